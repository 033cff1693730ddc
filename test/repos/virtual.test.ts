import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout, type Image } from '../helpers/images.js';
import { errorCode, pushImage, seedImage } from '../helpers/registry.js';
import { tempDir } from '../helpers/server.js';
import { skopeo } from '../helpers/skopeo.js';
import { remoteFixture } from '../helpers/upstream.js';

// Virtual repositories over two local members and a remote one in front of a real Distribution
// (through a counting pass-through, so "the upstream was not asked" is asserted, not assumed).
// `docker` lists its remote member first on purpose: locals are still asked first.

// The store's clock: a step on tells two pushes apart by their timestamps, rather than waiting for
// the wall clock to turn a millisecond.
let offset = 0;
const fixture = remoteFixture(test, (url) => ({
  'docker-local': { type: 'local' },
  'docker-team': { type: 'local' },
  'docker-remote': { type: 'remote', url },
  docker: { type: 'virtual', repositories: ['docker-remote', 'docker-local', 'docker-team'], defaultDeploymentRepo: 'docker-local' },
  'docker-latest': { type: 'virtual', repositories: ['docker-local', 'docker-team'], resolveDockerTagsByTimestamp: true },
  'docker-readonly': { type: 'virtual', repositories: ['docker-local'] },
  'docker-nested': { type: 'virtual', repositories: ['docker-readonly', 'docker-team'] },
}), { listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'docker' }], storageNow: () => Date.now() + offset });

const base = () => fixture.wharf.url;
test.before.each(() => fixture.proxy.reset());

async function digestOf(path: string): Promise<string | null> {
  const response = await fetch(`${base()}/v2/${path}`, { method: 'HEAD' });
  return response.status === 200 ? response.headers.get('docker-content-digest') : null;
}

test('a push through the virtual repository lands in its default deployment repository', async () => {
  const image = makeImage();
  await pushImage(base(), 'docker/team/app', image, 'v1');
  assert.is(await digestOf('docker-local/team/app/manifests/v1'), image.digest);
  assert.is(await digestOf('docker-team/team/app/manifests/v1'), null);
  assert.is(await digestOf('docker/team/app/manifests/v1'), image.digest);
  const layer = await fetch(`${base()}/v2/docker/team/app/blobs/${image.layers[0]!.digest}`);
  assert.equal(Buffer.from(await layer.arrayBuffer()), image.layers[0]!.bytes);
});

test('local members answer before the remote member, which is then not asked at all', async () => {
  const upstreamImage = makeImage();
  const localImage = makeImage();
  await seedImage(fixture.distribution.url, 'shared/app', upstreamImage, 'v1');
  await pushImage(base(), 'docker-team/shared/app', localImage, 'v1');
  fixture.proxy.reset();
  assert.is(await digestOf('docker/shared/app/manifests/v1'), localImage.digest);
  const blob = await fetch(`${base()}/v2/docker/shared/app/blobs/${localImage.config.digest}`);
  assert.is(blob.status, 200);
  await blob.arrayBuffer();
  assert.equal(fixture.proxy.counts, {});
});

test('content no local member has comes from the remote member, manifests and blobs', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'only/upstream', image, 'v2');
  assert.is(await digestOf('docker/only/upstream/manifests/v2'), image.digest);
  const layer = await fetch(`${base()}/v2/docker/only/upstream/blobs/${image.layers[1]!.digest}`);
  assert.equal(Buffer.from(await layer.arrayBuffer()), image.layers[1]!.bytes);
  assert.ok((fixture.proxy.counts['GET manifest'] ?? 0) >= 1);
  assert.is(fixture.proxy.counts['GET blob'], 1);
  // Cached by the remote member: the next pull is served without the upstream.
  fixture.proxy.reset();
  await (await fetch(`${base()}/v2/docker/only/upstream/blobs/${image.layers[1]!.digest}`)).arrayBuffer();
  assert.is(fixture.proxy.counts['GET blob'], undefined);
});

test('a manifest in no member is MANIFEST_UNKNOWN naming the virtual repository', async () => {
  const response = await fetch(`${base()}/v2/docker/nowhere/app/manifests/v1`);
  assert.is(response.status, 404);
  const body = await response.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'MANIFEST_UNKNOWN');
  assert.match(body.errors[0]!.message, /no member of docker/);
});

test('resolveDockerTagsByTimestamp picks the most recently pushed member; plain order picks the first', async () => {
  const older = makeImage();
  const newer = makeImage();
  await pushImage(base(), 'docker-local/stamp/app', older, 'latest');
  offset += 1000;
  await pushImage(base(), 'docker-team/stamp/app', newer, 'latest');
  assert.is(await digestOf('docker-latest/stamp/app/manifests/latest'), newer.digest);
  assert.is(await digestOf('docker/stamp/app/manifests/latest'), older.digest);
  // Pushing the older member again makes it the newest.
  offset += 1000;
  await pushImage(base(), 'docker-local/stamp/app', makeImage(), 'latest');
  assert.not.equal(await digestOf('docker-latest/stamp/app/manifests/latest'), newer.digest);
});

test('tags/list merges members without duplicates, paginated with Link', async () => {
  const image: Image = makeImage();
  for (const tag of ['a', 'c']) await pushImage(base(), 'docker-local/merge/app', image, tag);
  for (const tag of ['b', 'c', 'd']) await pushImage(base(), 'docker-team/merge/app', image, tag);
  const all = await fetch(`${base()}/v2/docker/merge/app/tags/list`);
  assert.equal(await all.json(), { name: 'docker/merge/app', tags: ['a', 'b', 'c', 'd'] });
  const first = await fetch(`${base()}/v2/docker/merge/app/tags/list?n=2`);
  assert.equal((await first.json() as { tags: string[] }).tags, ['a', 'b']);
  assert.is(first.headers.get('link'), '</v2/docker/merge/app/tags/list?n=2&last=b>; rel="next"');
  const second = await fetch(`${base()}/v2/docker/merge/app/tags/list?n=2&last=b`);
  assert.equal((await second.json() as { tags: string[] }).tags, ['c', 'd']);
  assert.is(second.headers.get('link'), null);
  const unknown = await fetch(`${base()}/v2/docker/merge/none/tags/list`);
  assert.is(await errorCode(unknown), 'NAME_UNKNOWN');
});

test('the catalog of a virtual repository merges its members, paginated', async () => {
  await pushImage(base(), 'docker-team/catalog/one', makeImage(), 'v1');
  await pushImage(base(), 'docker-local/catalog/one', makeImage(), 'v1');
  await pushImage(base(), 'docker-local/catalog/two', makeImage(), 'v1');
  const names = (await (await fetch(`${base()}/api/docker/docker-nested/v2/_catalog`)).json() as { repositories: string[] }).repositories;
  assert.equal(names.filter((name) => name.startsWith('catalog/')), ['catalog/one', 'catalog/two']);
  assert.equal(names, [...new Set(names)].sort());
  const page = await fetch(`${base()}/api/docker/docker-nested/v2/_catalog?n=1&last=catalog%2Fone`);
  assert.equal((await page.json() as { repositories: string[] }).repositories, ['catalog/two']);
});

test('a virtual repository without a deployment repository refuses pushes, saying how to configure one', async () => {
  const response = await fetch(`${base()}/v2/docker-readonly/team/app/blobs/uploads/`, { method: 'POST' });
  assert.is(response.status, 403);
  const body = await response.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, /repositories\.docker-readonly\.defaultDeploymentRepo/);
});

test('a nested virtual repository resolves through its members', async () => {
  const image = makeImage();
  await pushImage(base(), 'docker-local/nested/app', image, 'v1');
  assert.is(await digestOf('docker-nested/nested/app/manifests/v1'), image.digest);
});

test('bound to a port, the virtual repository is a whole registry for skopeo: push, then pull from upstream and local', async () => {
  const port = new URL(fixture.wharf.urls[1]!).port;
  const layout = await tempDir('wharf-virtual-layout-');
  const image = makeImage();
  await writeOciLayout(layout, 'v1', [image]);
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://127.0.0.1:${port}/team/skopeo:v1`]);
  assert.is(await digestOf('docker-local/team/skopeo/manifests/v1'), image.digest);
  const upstream = makeImage();
  await seedImage(fixture.distribution.url, 'library/alpine', upstream, '3');
  const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://127.0.0.1:${port}/library/alpine:3`])) as { Digest: string };
  assert.is(inspected.Digest, upstream.digest);
  const out = await tempDir('wharf-virtual-pull-');
  await skopeo(['copy', '--src-tls-verify=false', `docker://127.0.0.1:${port}/team/skopeo:v1`, `dir:${out}`]);
});

/** skopeo copy between two images of this registry. */
function copy(from: string, to: string): Promise<string> {
  const host = new URL(base()).host;
  return skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${host}/${from}`, `docker://${host}/${to}`]);
}

test('skopeo copies within the virtual repository from its remote member: the manifest PUT fetches the blobs the upstream answered for', async () => {
  // Nothing of it cached: the blob HEADs are answered by the upstream, so skopeo uploads nothing.
  const upstream = makeImage();
  await seedImage(fixture.distribution.url, 'lib/alpine', upstream, '3');
  await copy('docker/lib/alpine:3', 'docker/lib/alpine:mine');
  assert.is(await digestOf('docker-local/lib/alpine/manifests/mine'), upstream.digest);
  for (const item of [upstream.config, ...upstream.layers]) {
    const stored = await fetch(`${base()}/v2/docker-local/lib/alpine/blobs/${item.digest}`);
    assert.equal(Buffer.from(await stored.arrayBuffer()), item.bytes, 'the deployment repository serves every blob itself');
  }
});

test('skopeo copies into the virtual repository from a local member other than its deployment repository: the blobs are linked, as a mount', async () => {
  const team = makeImage();
  await pushImage(base(), 'docker-team/pg/moved', team, 'd');
  await copy('docker-team/pg/moved:d', 'docker/pg/moved:new');
  assert.is(await digestOf('docker-local/pg/moved/manifests/new'), team.digest);
  for (const item of [team.config, ...team.layers]) {
    assert.is((await fetch(`${base()}/v2/docker-local/pg/moved/blobs/${item.digest}`, { method: 'HEAD' })).status, 200);
  }
});

test.run();
