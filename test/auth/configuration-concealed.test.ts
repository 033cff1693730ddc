import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOCKER_FOREIGN_LAYER, DOCKER_MANIFEST } from '../../src/oci/mediatypes.js';
import { basic, fetchToken } from '../helpers/auth.js';
import { blob, descriptorOf } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { seedBlob } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startDistribution, type Distribution } from '../helpers/upstream.js';

// Configuration (upstream addresses, foreign-layer allow patterns, the hosts they name) is for
// administrators. Each kind of error that names it is tried as an anonymous caller, as a
// signed-in caller who may read and fetch, and as an administrator: the first two learn no
// address, URL or pattern, and an anonymous caller is never told more than a signed-in one.

const mirror = 'internal-mirror.corp.example';
const deniedUrl = 'https://elsewhere.example/layers/win.tgz';
/** A signed URL's query: shown to no one, administrators and the log included. */
const signature = 'sig=SIGNATURE-OF-A-SIGNED-URL';

let open: Distribution;
let locked: Distribution;
let other: TestServer; // another Wharf, which takes layer URLs of any form
let wharf: TestServer;
let logged = '';
let closed = ''; // an allowed address where nothing listens
const digests: Record<string, string> = {};

/** Seeds team/<name>:1 whose one layer is foreign, at `url`, in `upstream` (under `prefix`), and caches its manifest in `key`. */
async function seedForeign(name: string, url: string, { upstream = open.url, prefix = '', key = 'docker-remote' } = {}): Promise<void> {
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'windows' })));
  const foreign = blob(randomBytes(1000));
  digests[name] = foreign.digest;
  await seedBlob(upstream, `${prefix}team/${name}`, config);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST,
    config: descriptorOf(config, 'application/vnd.docker.container.image.v1+json'),
    layers: [{ ...descriptorOf(foreign, DOCKER_FOREIGN_LAYER), urls: [url] }],
  });
  const put = await fetch(`${upstream}/v2/${prefix}team/${name}/manifests/1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } });
  assert.is(put.status, 201, await put.text());
  assert.is((await fetch(`${wharf.url}/v2/${key}/team/${name}/manifests/1`, { headers: ci })).status, 200);
}

const ci = { authorization: basic('ci', 'ci-password-1') };
const boss = { authorization: basic('boss', 'boss-password-1') };

test.before(async () => {
  open = await startDistribution({ foreignUrls: true });
  locked = await startDistribution({ user: 'owner', password: 'owner-password' }); // Wharf has no credentials for it
  other = await startWharf({ repositories: { 'docker-local': { type: 'local' } } });
  closed = `http://127.0.0.1:${await freePort()}`;
  wharf = await startWharf({
    auth: {},
    repositories: {
      'docker-remote': { type: 'remote', url: open.url, foreignLayers: { cache: true, allow: [`https://${mirror}/**`, `${closed}/**`] } },
      'locked-remote': { type: 'remote', url: locked.url },
      // Patterns may name no scheme, and a manifest's layer URLs may have none: no address shows.
      'share-remote': { type: 'remote', url: `${other.url}/api/docker/docker-local`, foreignLayers: { cache: true, allow: [`**/${mirror}/**`] } },
    },
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'boss', password: 'boss-password-1', admin: true }],
    permissions: [{ name: 'open', repositories: ['docker-remote', 'locked-remote', 'share-remote'], users: { ci: ['read', 'deploy'] }, anonymous: ['read', 'deploy'] }],
    log: (line: string) => { logged += `${line}\n`; },
  });
  await seedForeign('denied', `${deniedUrl}?se=2030&${signature}`);
  await seedForeign('down', `${closed}/layers/win.tgz`);
  await seedForeign('share', 'win-share/layers/win.tgz', { upstream: other.url, prefix: 'docker-local/', key: 'share-remote' });
});
test.after(async () => {
  await wharf.cleanup();
  await open.stop();
  await locked.stop();
  await other.cleanup();
});

interface Told { status: number; text: string; message: string; detail: unknown }

/** The answer to `path` as an anonymous caller (with an anonymous token, as Docker clients do), as ci and as boss. */
async function askAll(path: string, scope: string): Promise<{ anonymous: Told; signedIn: Told; admin: Told }> {
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { scopes: [scope] });
  const ask = async (headers: Record<string, string>): Promise<Told> => {
    const response = await fetch(`${wharf.url}${path}`, { headers });
    const text = await response.text();
    const { message, detail } = (JSON.parse(text) as { errors: { message: string; detail: unknown }[] }).errors[0]!;
    return { status: response.status, text, message, detail };
  };
  return { anonymous: await ask({ authorization: `Bearer ${token}` }), signedIn: await ask(ci), admin: await ask(boss) };
}

/** Neither caller who is not an administrator is told `secrets`; the anonymous one no more than the signed-in one. */
function assertConcealed(told: { anonymous: Told; signedIn: Told }, secrets: string[]): void {
  for (const who of ['anonymous', 'signedIn'] as const) {
    for (const secret of [...secrets, '://']) assert.not.match(told[who].text, secret, `${who} is told ${secret}: ${told[who].text}`);
  }
  assert.is(told.anonymous.status, told.signedIn.status);
  assert.is(told.anonymous.detail, null);
  assert.ok(told.anonymous.message.length <= told.signedIn.message.length, `anonymous: ${told.anonymous.message}; signed in: ${told.signedIn.message}`);
}

test('a foreign layer no pattern allows: the patterns, their hosts and the layer URLs are for administrators', async () => {
  const told = await askAll(`/v2/docker-remote/team/denied/blobs/${digests.denied}`, 'repository:docker-remote/team/denied:pull');
  assert.is(told.anonymous.status, 403);
  assertConcealed(told, [mirror, deniedUrl, 'allow', closed]);
  assert.match(told.admin.message, `https://${mirror}/**`, 'an administrator sees the patterns');
  assert.match(told.admin.message, deniedUrl);
  for (const text of [told.admin.text, logged]) assert.not.match(text, signature, 'a signed URL\'s query is shown');
  assert.match(logged, `https://${mirror}/**`, 'the log has what callers are not told');
});

test('a foreign layer no pattern allows, where neither names a scheme: the patterns are for administrators', async () => {
  const told = await askAll(`/v2/share-remote/team/share/blobs/${digests.share}`, 'repository:share-remote/team/share:pull');
  assert.is(told.anonymous.status, 403);
  assertConcealed(told, [mirror, 'win-share', 'allow']);
  assert.match(told.admin.message, `**/${mirror}/**`);
});

test('an allowed foreign layer whose URL fails: its address is for administrators', async () => {
  const told = await askAll(`/v2/docker-remote/team/down/blobs/${digests.down}`, 'repository:docker-remote/team/down:pull');
  assert.is(told.anonymous.status, 502);
  assertConcealed(told, [closed, mirror]);
  assert.match(told.admin.message, closed);
});

test('an upstream that refuses Wharf: its address is for administrators', async () => {
  const told = await askAll('/v2/locked-remote/team/app/manifests/1', 'repository:locked-remote/team/app:pull');
  assert.is(told.anonymous.status, 403);
  assertConcealed(told, [new URL(locked.url).host]);
  assert.match(told.admin.message, new URL(locked.url).host);
});

test('an upstream that has no such image: its address is for administrators', async () => {
  const told = await askAll('/v2/docker-remote/team/none/manifests/1', 'repository:docker-remote/team/none:pull');
  assert.is(told.anonymous.status, 404);
  assertConcealed(told, [new URL(open.url).host]);
  assert.match(told.admin.message, new URL(open.url).host);
});

test.run();
