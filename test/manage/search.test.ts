import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { basic } from '../helpers/auth.js';
import { blob, descriptorOf, type Image } from '../helpers/images.js';
import { pushMultiArch } from '../helpers/manage.js';
import { errorCode, pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { withStore } from '../helpers/stored.js';

// Search, the repository list and the listing/info routes under access control: each finds what
// it should by every key, and shows a caller only what they may read (anonymous callers: what
// anonymous may read). alice reads team/** in docker-local and docker-team, nothing in
// docker-secret; root is an admin.

let wharf: TestServer;
const root = { authorization: basic('root', 'root-password-1') };
const alice = { authorization: basic('alice', 'alice-password-1') };
let multi: Awaited<ReturnType<typeof pushMultiArch>>;
const web = labelled({ team: 'web', tier: 'front' });

function labelled(labels: Record<string, string>): Image {
  const layer = blob(gzipSync(randomBytes(1000)));
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { ...labels, nonce: randomBytes(4).toString('hex') } }, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(config, 'application/vnd.oci.image.config.v1+json'), layers: [descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar+gzip')] })) as Buffer<ArrayBuffer>;
  return { config, layers: [layer], manifest, digest: blob(manifest).digest, platform: { os: 'linux', architecture: 'amd64' } };
}

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'docker-team' }],
    repositories: {
      'docker-local': { type: 'local' }, 'docker-team': { type: 'local' }, 'docker-secret': { type: 'local' },
      docker: { type: 'virtual', repositories: ['docker-local', 'docker-team'] },
    },
    users: [{ name: 'root', password: 'root-password-1', admin: true }, { name: 'alice', password: 'alice-password-1' }],
    permissions: [{ name: 'team', repositories: ['docker-local', 'docker-team', 'docker'], include: ['team/**'], users: { alice: ['read'] } }],
  });
  const seed = async (path: string, image: Image, tag: string) => pushImage(wharf.url, path, image, tag, root);
  await seed('docker-local/team/web', web, '1.0');
  await seed('docker-local/other/thing', labelled({ team: 'web' }), '1.0');
  await seed('docker-team/team/api', labelled({ team: 'api' }), '2.0');
  await seed('docker-secret/team/web', labelled({ team: 'web' }), '9');
  for (const tag of ['a', 'b', 'c']) await seed('docker-team/team/pages', labelled({}), tag);
  multi = await pushMultiArch(wharf.url, 'docker-local/team/multi', 'v1', { headers: root });
});
test.after(() => wharf.cleanup());

interface Found { results: { repository: string; image: string; tag: string; digest: string; uri: string }[]; next: string | null }

async function search(query: string, headers: Record<string, string> = alice): Promise<Found & { link: string | null }> {
  const response = await fetch(`${wharf.url}/api/search/docker?${query}`, { headers });
  assert.is(response.status, 200, await response.clone().text());
  return { ...((await response.json()) as Found), link: response.headers.get('link') };
}

const names = (found: Found) => found.results.map((r) => `${r.repository}/${r.image}:${r.tag}`);

test('by image name (exact or wildcard), tag, digest (an index through its platform images too) and label', async () => {
  assert.equal(names(await search('image=team/web')), ['docker-local/team/web:1.0']);
  assert.equal(names(await search('image=team/web', root)), ['docker-local/team/web:1.0', 'docker-secret/team/web:9']);
  assert.equal(names(await search('image=team/a*')), ['docker-team/team/api:2.0']);
  assert.equal(names(await search('tag=2.0')), ['docker-team/team/api:2.0']);
  assert.equal(names(await search(`digest=${web.digest}`)), ['docker-local/team/web:1.0']);
  assert.equal(names(await search(`digest=${multi.images[1]!.digest}`)), ['docker-local/team/multi:v1']);
  assert.equal(names(await search('label=team=web')), ['docker-local/team/web:1.0'], 'other/thing and docker-secret are hidden');
  assert.equal(names(await search('label=team=web', root)), ['docker-local/other/thing:1.0', 'docker-local/team/web:1.0', 'docker-secret/team/web:9']);
  assert.equal(names(await search('label=tier')), ['docker-local/team/web:1.0']);
  assert.equal(names(await search('label=team&image=team/api')), ['docker-team/team/api:2.0'], 'every key must match');
  const [first] = (await search('image=team/web')).results;
  assert.is(first!.uri, `${wharf.url}/api/docker/docker-local/info/team/web/1.0`);
});

test('repos narrows the search (a virtual repository stands for its members); a repository the caller cannot see is unknown', async () => {
  assert.equal(names(await search('image=team/*&repos=docker-team')), ['docker-team/team/api:2.0', 'docker-team/team/pages:a', 'docker-team/team/pages:b', 'docker-team/team/pages:c']);
  assert.equal(names(await search('tag=1.0&repos=docker')), ['docker-local/team/web:1.0']);
  const hidden = await fetch(`${wharf.url}/api/search/docker?image=team/web&repos=docker-secret`, { headers: alice });
  assert.is(hidden.status, 404);
  assert.is(await errorCode(hidden), 'NAME_UNKNOWN');
});

test('pages of n with a Link to the next; the pages together are the whole answer', async () => {
  const seen: string[] = [];
  let query = 'image=team/*&n=2';
  for (let pages = 0; pages < 10; pages++) {
    const page = await search(query);
    seen.push(...names(page));
    if (!page.next) {
      assert.is(page.link, null);
      break;
    }
    assert.is(page.results.length, 2);
    assert.match(page.link!, /^<\/api\/search\/docker\?.*last=/);
    query = page.link!.slice('</api/search/docker?'.length, page.link!.indexOf('>'));
  }
  assert.equal(seen, names(await search('image=team/*&n=1000')));
  assert.is(seen.length, 6);
});

test('anonymous callers find only what anonymous may read; bad queries get spec errors', async () => {
  assert.equal((await search('image=team/web', {})).results, []);
  for (const [query, code] of [['', 'REQUEST_INVALID'], ['image=x&n=0', 'PAGINATION_NUMBER_INVALID'], ['image=x&n=5000', 'PAGINATION_NUMBER_INVALID'], ['digest=sha256:zz', 'REQUEST_INVALID'], ['image=x&last=%%%', 'REQUEST_INVALID'], ['label==x', 'REQUEST_INVALID'], [`image=${'a'.repeat(300)}`, 'REQUEST_INVALID'], ['image=Team/%3Cx%3E', 'REQUEST_INVALID'], ['tag=a%20b', 'REQUEST_INVALID']] as const) {
    const response = await fetch(`${wharf.url}/api/search/docker?${query}`, { headers: alice });
    assert.is(await errorCode(response), code, query);
  }
});

test('wildcards match case-sensitively, as exact names and tags do: Rel-* is not rel-2', async () => {
  await pushImage(wharf.url, 'docker-local/cased/app', labelled({}), 'Rel-1', root);
  await pushImage(wharf.url, 'docker-local/cased/app', labelled({}), 'rel-2', root);
  assert.equal(names(await search('image=cased/*&tag=Rel-*', root)), ['docker-local/cased/app:Rel-1']);
  assert.equal(names(await search('image=cased/*&tag=rel-?', root)), ['docker-local/cased/app:rel-2']);
  assert.equal(names(await search('image=cased/*&tag=REL*', root)), []);
});

test('GET /api/repositories: what the caller may read, with type, package type and every access URL', async () => {
  const list = async (headers: Record<string, string>, query = '') => (await (await fetch(`${wharf.url}/api/repositories${query}`, { headers })).json()) as { key: string; type: string; packageType: string; url: string; access: { method: string; url: string }[] }[];
  const mine = await list(alice);
  assert.equal(mine.map((r) => [r.key, r.type, r.packageType]), [['docker', 'VIRTUAL', 'Docker'], ['docker-local', 'LOCAL', 'Docker'], ['docker-team', 'LOCAL', 'Docker']]);
  const team = mine.find((r) => r.key === 'docker-team')!;
  const [, bound] = wharf.urls;
  assert.equal(team.access.map((a) => [a.method, a.url]), [['port binding', bound], ['repository path', `${wharf.url}/docker-team`]]);
  assert.is(team.url, bound);
  assert.equal((await list(root)).map((r) => r.key), ['docker', 'docker-local', 'docker-secret', 'docker-team']);
  assert.equal((await list(root, '?type=local')).map((r) => r.key), ['docker-local', 'docker-secret', 'docker-team']);
  assert.equal(await list({}), []);
  // On the listener bound to docker-team too: the caller decides what is shown, not the way in.
  const onBound = (await (await fetch(`${bound}/api/repositories`, { headers: alice })).json()) as { key: string }[];
  assert.equal(onBound.map((r) => r.key), mine.map((r) => r.key));
  assert.equal(await (await fetch(`${bound}/api/repositories`)).json(), []);
});

test('the listing and info routes under access control: Basic credentials, pagination, refusals', async () => {
  const catalog = await fetch(`${wharf.url}/api/docker/docker-local/v2/_catalog?n=1`, { headers: alice });
  assert.equal(await catalog.json(), { repositories: ['team/multi'] });
  assert.is(catalog.headers.get('link'), '</api/docker/docker-local/v2/_catalog?n=1&last=team%2Fmulti>; rel="next"');
  const next = await fetch(`${wharf.url}/api/docker/docker-local/v2/_catalog?n=1&last=team%2Fmulti`, { headers: alice });
  assert.equal(await next.json(), { repositories: ['team/web'] }, 'other/thing is not listed for alice');
  const tags = await fetch(`${wharf.url}/api/docker/docker-team/v2/team/pages/tags/list?n=2&last=a`, { headers: alice });
  assert.equal(await tags.json(), { name: 'team/pages', tags: ['b', 'c'] });
  assert.is((await fetch(`${wharf.url}/api/docker/docker-team/v2/team/pages/tags/list`)).status, 401);
  assert.is((await fetch(`${wharf.url}/api/docker/docker-local/v2/other/thing/tags/list`, { headers: alice })).status, 403);
  const info = await fetch(`${wharf.url}/api/docker/docker-local/info/team/web/1.0`, { headers: alice });
  assert.is(info.status, 200);
  assert.equal(((await info.json()) as { images: { labels: Record<string, string> }[] }).images[0]!.labels.team, 'web');
  const denied = await fetch(`${wharf.url}/api/docker/docker-local/info/other/thing/1.0`, { headers: alice });
  assert.is(denied.status, 403);
  assert.is(await errorCode(denied), 'DENIED');
  const anonymous = await fetch(`${wharf.url}/api/storage/docker-local/team/web/1.0/manifest.json?properties`);
  assert.is(anonymous.status, 401);
  assert.is(anonymous.headers.get('www-authenticate'), 'Basic realm="wharf"');
  assert.is(await errorCode(await fetch(`${wharf.url}/api/docker/docker-secret/info/team/web/9`, { headers: alice })), 'NAME_UNKNOWN');
});

test('repos with an empty key is refused, naming the parameter', async () => {
  for (const repos of [',', '', 'docker-local,']) {
    const response = await fetch(`${wharf.url}/api/search/docker?tag=1.0&repos=${repos}`, { headers: alice });
    assert.is(response.status, 400, repos);
    const [error] = ((await response.json()) as { errors: { code: string; message: string; detail: { parameter: string } }[] }).errors;
    assert.is(error!.code, 'REQUEST_INVALID');
    assert.match(error!.message, /^repos /);
    assert.is(error!.detail.parameter, 'repos');
  }
});

test('a page that ends on tags the caller may not read has a next that names none of them (sealed)', async () => {
  const hidden = labelled({});
  await pushImage(wharf.url, 'docker-local/other/hidden', hidden, 'h00000', root);
  await pushImage(wharf.url, 'docker-local/team/late', labelled({}), 'h1', root);
  const ref = { repo: 'docker-local', name: 'other/hidden' };
  // 20,000 tags alice may not read, before hers: one page scans them all and stops on the last.
  // In transactions of 1,000, letting the server's sockets run in between (the server is in this process).
  await withStore(wharf, { 'docker-local': { type: 'local' } }, async (store) => {
    for (let from = 1; from < 20_000; from += 1000) {
      await store.metadata.transaction(async (tx) => {
        for (let i = from; i < Math.min(from + 1000, 20_000); i++) await tx.tags.set(ref, `h${String(i).padStart(5, '0')}`, hidden.digest, Date.now(), { platformTags: [], maxUniqueTags: 0 });
      });
      await new Promise(setImmediate);
    }
  });
  const first = await search('tag=h*&repos=docker-local');
  assert.equal(first.results, []);
  assert.ok(first.next);
  assert.not.match(Buffer.from(first.next!, 'base64url').toString('latin1'), 'hidden');
  assert.equal(names(await search(`tag=h*&repos=docker-local&last=${first.next}`)), ['docker-local/team/late:h1']);
  assert.is(await errorCode(await fetch(`${wharf.url}/api/search/docker?tag=h*&last=${Buffer.from(JSON.stringify(['docker-local', 'other/hidden', 'h19999'])).toString('base64url')}`, { headers: alice })), 'REQUEST_INVALID', 'a cursor not sealed here is refused');
});

test('a catalog page reads at most 20,000 names: it may end short, with a sealed Link that names none the caller may not read', async () => {
  const hidden = labelled({});
  await pushImage(wharf.url, 'docker-local/other/c00000', hidden, '1', root);
  // 20,000 images alice may not read (as the search test above, in transactions of 1,000), before hers.
  await withStore(wharf, { 'docker-local': { type: 'local' } }, async (store) => {
    for (let from = 1; from < 20_000; from += 1000) {
      await store.metadata.transaction(async (tx) => {
        for (let i = from; i < Math.min(from + 1000, 20_000); i++) {
          await tx.management.link({ repo: 'docker-local', name: `other/c${String(i).padStart(5, '0')}` }, { manifests: [hidden.digest], blobs: [], missing: [] }, Date.now());
        }
      });
      await new Promise(setImmediate);
    }
  });
  const first = await fetch(`${wharf.url}/v2/_catalog`, { headers: alice });
  assert.is(first.status, 200);
  assert.equal(((await first.json()) as { repositories: string[] }).repositories, []);
  const link = first.headers.get('link');
  assert.match(link ?? '', /^<\/v2\/_catalog\?n=10000&last=~[^>]+>; rel="next"$/);
  assert.not.match(Buffer.from(/last=~([^>]+)>/.exec(link!)![1]!, 'base64url').toString('latin1'), 'other');
  const second = await fetch(`${wharf.url}${/<([^>]+)>/.exec(link!)![1]}`, { headers: alice });
  assert.equal(((await second.json()) as { repositories: string[] }).repositories.filter((name) => name.startsWith('docker-local/')).slice(0, 2), ['docker-local/team/late', 'docker-local/team/multi']);
  assert.is(await errorCode(await fetch(`${wharf.url}/v2/_catalog?last=~${Buffer.from(JSON.stringify({ catalog: 'docker-local/other/c19999' })).toString('base64url')}`, { headers: alice })), 'REQUEST_INVALID', 'a cursor not sealed here is refused');
});

test('a virtual repository\'s catalog reads at most 20,000 names of a member too, and goes on from there (after the test above)', async () => {
  const first = await fetch(`${wharf.url}/api/docker/docker/v2/_catalog`, { headers: alice });
  assert.equal(((await first.json()) as { repositories: string[] }).repositories, [], 'docker-team\'s names come after where docker-local stopped');
  const link = first.headers.get('link');
  assert.match(link ?? '', /^<\/api\/docker\/docker\/v2\/_catalog\?n=10000&last=~[^>]+>; rel="next"$/);
  const second = await fetch(`${wharf.url}${/<([^>]+)>/.exec(link!)![1]}`, { headers: alice });
  assert.equal(((await second.json()) as { repositories: string[] }).repositories, ['team/api', 'team/late', 'team/multi', 'team/pages', 'team/web']);
  assert.is(second.headers.get('link'), null);
});

test.run();
