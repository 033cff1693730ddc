import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';
import { basic } from '../helpers/auth.js';

// Permissions are per image in a remote repository too: a blob another image cached (or is
// fetching) is served to an image only when a manifest of that image names it, or when the
// upstream has it under that image's name. Knowing a digest is no right to another image's layers.

let wharf: TestServer;
let distribution: Distribution;
let upstream: CountingProxy;
const secret = makeImage({ layers: 1 });
const open = makeImage({ layers: 1 });
/** Shares its layer with the secret image, as images built on one base do. */
const sibling = makeImage({ share: secret.layers });
const twin = makeImage({ share: secret.layers });
const root = basic('root', 'root-password');
const bob = basic('bob', 'bob-password');
const carol = basic('carol', 'carol-password');

test.before(async () => {
  distribution = await startDistribution();
  await seedImage(distribution.url, 'secret/img', secret, 'v1');
  await seedImage(distribution.url, 'open/img', open, 'v1');
  await seedImage(distribution.url, 'open/sibling', sibling, 'v1');
  await seedImage(distribution.url, 'open/twin', twin, 'v1');
  upstream = await startCountingProxy(distribution.url);
  wharf = await startWharf({
    auth: {},
    audit: () => undefined,
    users: [{ name: 'bob', password: 'bob-password' }, { name: 'carol', password: 'carol-password' }, { name: 'root', password: 'root-password', admin: true }],
    repositories: { 'docker-local': { type: 'local' }, hub: { type: 'remote', url: upstream.url } },
    permissions: [
      { name: 'open-fill', repositories: ['hub'], include: ['open/**'], users: { bob: ['deploy'] } },
      { name: 'open-read', repositories: ['hub'], include: ['open/**'], users: { carol: ['read'] } },
      { name: 'local', repositories: ['docker-local'], users: { bob: ['deploy'] } },
    ],
  });
  // An administrator pulls the secret image: its manifest and layer are in the cache now.
  assert.is((await fetch(`${wharf.url}/v2/hub/secret/img/manifests/v1`, { headers: { authorization: root, accept: OCI_MANIFEST } })).status, 200);
  assert.is((await fetch(`${wharf.url}/v2/hub/secret/img/blobs/${secret.layers[0]!.digest}`, { headers: { authorization: root } })).status, 200);
});
test.after(async () => {
  await wharf.cleanup();
  await upstream.stop();
  await distribution.stop();
});

const layerOf = (image: string, digest: string, authorization: string, method = 'GET') =>
  fetch(`${wharf.url}/v2/hub/${image}/blobs/${digest}`, { method, headers: { authorization } });

test('a cached layer of an image the caller may not read is not served through an image they may read', async () => {
  const digest = secret.layers[0]!.digest;
  for (const [who, authorization] of [['bob, who may fill the cache', bob], ['carol, who may read it', carol]] as const) {
    for (const method of ['GET', 'HEAD']) {
      const response = await layerOf('open/img', digest, authorization, method);
      assert.is(response.status, 404, `${who}: ${method}`);
      await response.arrayBuffer();
    }
  }
  const mount = await fetch(`${wharf.url}/v2/docker-local/stolen/img/blobs/uploads/?mount=${digest}&from=hub/open/img`, { method: 'POST', headers: { authorization: bob } });
  assert.is(mount.status, 202, 'no mount: a plain upload session');
  assert.is((await layerOf('secret/img', digest, root)).status, 200, 'the layer is in the cache all along');
});

test('a layer an image shares with another is served from the cache once a manifest of it names the layer', async () => {
  const digest = sibling.layers[0]!.digest;
  assert.is((await layerOf('open/sibling', digest, carol)).status, 404, 'carol may not fetch, and nothing of open/sibling is cached');
  const manifest = await fetch(`${wharf.url}/v2/hub/open/sibling/manifests/v1`, { headers: { authorization: bob, accept: OCI_MANIFEST } });
  assert.is(manifest.status, 200);
  const layer = await layerOf('open/sibling', digest, carol);
  assert.is(layer.status, 200, 'cached for the secret image, named by open/sibling\'s manifest');
  assert.is(layer.headers.get('docker-content-digest'), digest);
  assert.is((await layerOf('open/img', open.layers[0]!.digest, bob)).status, 200, 'and a fetch for an image the upstream has the layer in');
});

test('a layer another image cached is served to an image the upstream has it under after one HEAD, not fetched again', async () => {
  const digest = twin.layers[0]!.digest;
  upstream.reset();
  const layer = await layerOf('open/twin', digest, bob);
  assert.is(layer.status, 200);
  assert.is(layer.headers.get('docker-content-digest'), digest);
  assert.ok(Buffer.from(await layer.arrayBuffer()).equals(twin.layers[0]!.bytes));
  assert.equal(upstream.counts, { 'HEAD blob': 1 }, 'the upstream was asked whether open/twin has it, and sent no blob');
  assert.is((await layerOf('open/twin', digest, carol)).status, 404, 'carol, who may not ask the upstream, is not served it');
});

test.run();
