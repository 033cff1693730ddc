import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOCKER_FOREIGN_LAYER, DOCKER_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, type Blob } from '../helpers/images.js';
import { seedBlob } from '../helpers/registry.js';
import type { TestServer } from '../helpers/server.js';
import { startRemoteFixture, type CountingProxy, type Distribution, type RemoteFixture } from '../helpers/upstream.js';

// Foreign layers: the manifest lists a layer by URL; Wharf fetches it from that URL only when an
// allow pattern matches, verifies it, caches it and serves it at the blob endpoint.

let fixture: RemoteFixture;
let distribution: Distribution;
let proxy: CountingProxy;
let wharf: TestServer;
let external: Server;
let externalUrl: string;
const externalRequests: string[] = [];
const files = new Map<string, Buffer>();

test.before(async () => {
  external = createServer((req, res) => {
    externalRequests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => external.listen(0, '127.0.0.1', resolve));
  externalUrl = `http://127.0.0.1:${(external.address() as AddressInfo).port}`;
  fixture = await startRemoteFixture((url) => ({
    'docker-remote': { type: 'remote', url, foreignLayers: { cache: true, allow: ['http://127.0.0.1:*/allowed/**'] } },
  }), { distribution: { foreignUrls: true } });
  ({ distribution, proxy, wharf } = fixture);
});
test.after(async () => {
  await fixture.stop();
  external.closeAllConnections();
  await new Promise((resolve) => external.close(resolve));
});

/** Seeds a schema2 image whose second layer is foreign, at `path` on the external server. */
async function seedForeignImage(name: string, path: string): Promise<Blob> {
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'windows', nonce: randomBytes(4).toString('hex') })));
  const base = blob(randomBytes(500));
  const foreign = blob(randomBytes(70_000));
  files.set(path, foreign.bytes);
  await seedBlob(distribution.url, name, config);
  await seedBlob(distribution.url, name, base);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST,
    config: descriptorOf(config, 'application/vnd.docker.container.image.v1+json'),
    layers: [
      descriptorOf(base, 'application/vnd.docker.image.rootfs.diff.tar.gzip'),
      { ...descriptorOf(foreign, DOCKER_FOREIGN_LAYER), urls: [`${externalUrl}${path}`] },
    ],
  }));
  const put = await fetch(`${distribution.url}/v2/${name}/manifests/1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } });
  assert.is(put.status, 201, await put.text());
  return foreign;
}

test('an allowed foreign layer is fetched from its URL once, verified, and served from the cache', async () => {
  const layer = await seedForeignImage('team/win', '/allowed/layer.tgz');
  assert.is((await fetch(`${wharf.url}/v2/docker-remote/team/win/manifests/1`)).status, 200);
  for (let i = 0; i < 2; i++) {
    const response = await fetch(`${wharf.url}/v2/docker-remote/team/win/blobs/${layer.digest}`);
    assert.is(response.status, 200);
    assert.equal(Buffer.from(await response.arrayBuffer()), layer.bytes);
  }
  assert.equal(externalRequests.filter((url) => url === '/allowed/layer.tgz'), ['/allowed/layer.tgz'], 'fetched once, then cached');
  assert.is(proxy.counts['GET blob'] ?? 0, 0, 'the registry was not asked for the foreign layer');
});

test('a foreign layer whose URLs no pattern allows is never fetched, and the error names the patterns', async () => {
  const layer = await seedForeignImage('team/other', '/denied/layer.tgz');
  await fetch(`${wharf.url}/v2/docker-remote/team/other/manifests/1`);
  const response = await fetch(`${wharf.url}/v2/docker-remote/team/other/blobs/${layer.digest}`);
  assert.is(response.status, 403);
  const body = await response.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, 'http://127.0.0.1:*/allowed/**');
  assert.is((await fetch(`${wharf.url}/v2/docker-remote/team/other/blobs/${layer.digest}`, { method: 'HEAD' })).status, 403);
  assert.not.ok(externalRequests.includes('/denied/layer.tgz'), 'the disallowed URL was never contacted');
});

test.run();
