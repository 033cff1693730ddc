import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOCKER_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Blob } from '../helpers/images.js';
import { errorCode, pushForeignImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// The foreign-layer allowlist against URLs written to slip past it: each is matched as the fetch
// would parse it, so a URL whose text looks allowed but that goes elsewhere (backslash, "?", "#",
// userinfo, dot segments, another port, an IPv6 literal) never reaches that elsewhere. Loopback
// listeners record every connection: the proof that nothing was contacted.

interface Listener { server: Server; port: number; connections: number; paths: string[] }

async function listen(host: string, files: Map<string, Buffer> = new Map()): Promise<Listener> {
  const listener: Listener = { server: createServer((req, res) => {
    listener.paths.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  }), port: 0, connections: 0, paths: [] };
  listener.server.on('connection', () => { listener.connections++; });
  await new Promise<void>((resolve) => listener.server.listen(0, host, resolve));
  listener.port = (listener.server.address() as AddressInfo).port;
  return listener;
}

const files = new Map<string, Buffer>();
let allowed: Listener;
let secret: Listener;
let secretV6: Listener;
let upstream: TestServer;
let wharf: TestServer;

test.before(async () => {
  allowed = await listen('127.0.0.1', files);
  secret = await listen('127.0.0.1');
  secretV6 = await listen('::1');
  upstream = await startWharf();
  wharf = await startWharf({
    repositories: {
      remote: {
        type: 'remote', url: `${upstream.url}/api/docker/docker-local`,
        foreignLayers: { cache: true, allow: ['http://*.allowed.example/**', 'http://*.anyport.example:*/**', `http://127.0.0.1:${allowed.port}/layers/**`] },
      },
    },
  });
});
test.after(async () => {
  await wharf.cleanup();
  await upstream.cleanup();
  for (const { server } of [allowed, secret, secretV6]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

let images = 0;
/** An image in the upstream whose one layer is foreign, at `url`, with its manifest cached in Wharf. */
async function foreignImage(url: string): Promise<{ name: string; layer: Blob }> {
  const name = `team/foreign${images++}`;
  const layer = await pushForeignImage(upstream.url, `docker-local/${name}`, url, 1000);
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/manifests/1`, { headers: { Accept: DOCKER_MANIFEST } })).status, 200);
  return { name, layer };
}

test('an allowed foreign-layer URL is fetched', async () => {
  const { name, layer } = await foreignImage(`http://127.0.0.1:${allowed.port}/layers/good.tgz`);
  files.set('/layers/good.tgz', layer.bytes);
  const response = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`);
  assert.is(response.status, 200);
  assert.equal(Buffer.from(await response.arrayBuffer()), layer.bytes);
  assert.equal(allowed.paths, ['/layers/good.tgz']);
});

const bypasses: [string, () => string][] = [
  ['a backslash, which ends the host', () => `http://127.0.0.1:${secret.port}\\.allowed.example/secret`],
  ['"?", which ends the host', () => `http://127.0.0.1:${secret.port}?.allowed.example/secret`],
  ['"#", which ends the host', () => `http://127.0.0.1:${secret.port}#.allowed.example/secret`],
  ['userinfo, which moves the host after "@"', () => `http://a.anyport.example:1@127.0.0.1:${secret.port}/secret`],
  ['percent-encoded delimiters in the host', () => `http://127.0.0.1%3A${secret.port}%2F.allowed.example/secret`],
  ['an IPv6 literal', () => `http://[::1]:${secretV6.port}\\.allowed.example/secret`],
  ['a port other than the allowed one', () => `http://127.0.0.1:${secret.port}/layers/good.tgz`],
  ['dot segments that leave the allowed path', () => `http://127.0.0.1:${allowed.port}/layers/../private/secret`],
];

for (const [how, url] of bypasses) {
  test(`a URL that looks allowed but is not, through ${how}, is refused and never contacted`, async () => {
    const { name, layer } = await foreignImage(url());
    const response = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`);
    assert.is(response.status, 403, url());
    assert.is(await errorCode(response), 'DENIED');
    assert.is((await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`, { method: 'HEAD' })).status, 403);
    assert.is(secret.connections, 0, 'the loopback listener on IPv4 was not contacted');
    assert.is(secretV6.connections, 0, 'the loopback listener on IPv6 was not contacted');
    assert.equal(allowed.paths, ['/layers/good.tgz'], 'nothing outside the allowed path was asked');
  });
}

test.run();
