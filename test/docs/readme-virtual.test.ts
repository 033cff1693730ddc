import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { errorCode, pushImage, seedImage } from '../helpers/registry.js';
import { tempDir } from '../helpers/server.js';
import { skopeo } from '../helpers/skopeo.js';
import { remoteFixture } from '../helpers/upstream.js';

// README, "Virtual repositories": a member whose upstream is down is skipped for the next one;
// pushes, deletes and uploads go to defaultDeploymentRepo (refused, saying how, without one).
// `docker` lists a remote member whose upstream cuts every connection before the one in front
// of a real Distribution; `docker-dead` has the dead member alone, to show it really is down.

let dead: Server;
const deadUrl = await new Promise<string>((resolve) => {
  dead = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(dead.address() as AddressInfo).port}`));
});

const fixture = remoteFixture(test, (url) => ({
  'hub-down': { type: 'remote', url: deadUrl, timeouts: { connect: '2s', response: '2s' } },
  'hub-up': { type: 'remote', url },
  docker: { type: 'virtual', repositories: ['hub-down', 'hub-up'] },
  'docker-dead': { type: 'virtual', repositories: ['hub-down'] },
  'docker-local': { type: 'local' },
  'docker-rw': { type: 'virtual', repositories: ['hub-up', 'docker-local'], defaultDeploymentRepo: 'docker-local' },
  // The shipped config's `docker` on a machine that cannot reach Docker Hub.
  'docker-offline': { type: 'virtual', repositories: ['docker-local', 'hub-down'], defaultDeploymentRepo: 'docker-local' },
}));
test.after(() => new Promise<void>((resolve) => dead.close(() => resolve())));

test('a member whose upstream is down is skipped: manifests, blobs and tags come from the next one', async () => {
  const image = makeImage({ layers: 1 });
  await seedImage(fixture.distribution.url, 'library/app', image, '1.0');
  const base = `${fixture.wharf.url}/v2`;
  const refused = await fetch(`${base}/docker-dead/library/app/manifests/1.0`);
  assert.ok(refused.status >= 500, `the dead member alone fails (${refused.status} ${await errorCode(refused)})`);
  const manifest = await fetch(`${base}/docker/library/app/manifests/1.0`);
  assert.is(manifest.status, 200);
  assert.is(manifest.headers.get('docker-content-digest'), image.digest);
  await manifest.arrayBuffer();
  const layer = await fetch(`${base}/docker/library/app/blobs/${image.layers[0]!.digest}`);
  assert.equal(Buffer.from(await layer.arrayBuffer()), image.layers[0]!.bytes);
  const tags = await fetch(`${base}/docker/library/app/tags/list`);
  assert.is(tags.status, 200);
  assert.equal(((await tags.json()) as { tags: string[] }).tags, ['1.0']);
});

test('a push through a virtual repository goes on while its remote member\'s upstream is down (skopeo, which HEADs each blob first)', async () => {
  const image = makeImage({ layers: 2 });
  const layout = join(await tempDir('wharf-offline-push-'), 'layout');
  await writeOciLayout(layout, 'v1', [image]);
  const base = `${fixture.wharf.url}/v2`;
  const head = await fetch(`${base}/docker-offline/team/offline/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' });
  assert.is(head.status, 404, 'a blob no member has, with the upstream down: not there, so the client uploads it');
  const get = await fetch(`${base}/docker-offline/team/offline/blobs/${image.layers[0]!.digest}`);
  assert.ok(get.status >= 500, `a GET still says the upstream failed (${get.status})`);
  await get.arrayBuffer();
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${new URL(fixture.wharf.url).host}/docker-offline/team/offline:1.0`]);
  const landed = await fetch(`${base}/docker-local/team/offline/manifests/1.0`, { method: 'HEAD' });
  assert.is(landed.headers.get('docker-content-digest'), image.digest, 'the push landed in docker-local');
});

test('deletes and upload cancels through a virtual repository reach its deployment repository', async () => {
  const base = `${fixture.wharf.url}/v2`;
  const image = makeImage({ layers: 1 });
  await pushImage(fixture.wharf.url, 'docker-rw/team/app', image, '1.0');
  assert.is((await fetch(`${base}/docker-local/team/app/manifests/1.0`, { method: 'HEAD' })).status, 200, 'the push landed in docker-local');
  const refused = await fetch(`${base}/docker/team/app/manifests/1.0`, { method: 'DELETE' });
  assert.is(refused.status, 403);
  assert.match(await refused.text(), 'no default deployment repository');
  assert.is((await fetch(`${base}/docker-rw/team/app/manifests/1.0`, { method: 'DELETE' })).status, 202);
  assert.is((await fetch(`${base}/docker-local/team/app/manifests/1.0`, { method: 'HEAD' })).status, 404, 'the tag is gone from docker-local');
  assert.is((await fetch(`${base}/docker-rw/team/app/manifests/${image.digest}`, { method: 'DELETE' })).status, 202);
  assert.is((await fetch(`${base}/docker-local/team/app/manifests/${image.digest}`, { method: 'HEAD' })).status, 404, 'the manifest is gone from docker-local');
  assert.is((await fetch(`${base}/docker-rw/team/app/blobs/${image.layers[0]!.digest}`, { method: 'DELETE' })).status, 202);
  assert.is((await fetch(`${base}/docker-local/team/app/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })).status, 404, 'the blob is unlinked from docker-local');
  const started = await fetch(`${base}/docker-rw/team/app/blobs/uploads/`, { method: 'POST' });
  assert.is(started.status, 202);
  const location = started.headers.get('location')!;
  assert.match(location, '/docker-rw/team/app/blobs/uploads/');
  assert.is((await fetch(new URL(location, fixture.wharf.url), { method: 'DELETE' })).status, 204);
  assert.is((await fetch(new URL(location, fixture.wharf.url))).status, 404, 'the session is gone');
});

test.run();
