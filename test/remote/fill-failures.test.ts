import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOCKER_MANIFEST, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage, type Blob } from '../helpers/images.js';
import { logCollector, type LogCollector } from '../helpers/logs.js';
import { freePort } from '../helpers/ports.js';
import { pushForeignImage, pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCdn, startCountingProxy, type CountingProxy } from '../helpers/upstream.js';

// A blob fill that fails after the upstream's 200 (right length, wrong bytes) cuts its clients
// off; the operational log says which repository, blob and host, and why, and
// wharf_upstream_errors_total counts it. The upstream is another Wharf; counting pass-throughs
// in front of it corrupt what they forward.

let upstream: TestServer;
let proxy: CountingProxy;
let corrupting: CountingProxy;
let cdn: Awaited<ReturnType<typeof startCdn>>;
let foreignHost: Server;
let wharf: TestServer;
let log: LogCollector;
let access: LogCollector;
const foreignFiles = new Map<string, Buffer>();

test.before(async () => {
  upstream = await startWharf();
  proxy = await startCountingProxy(upstream.url);
  corrupting = await startCountingProxy(upstream.url);
  corrupting.fault = 'corrupt-blob';
  cdn = await startCdn(corrupting.url);
  foreignHost = createServer((req, res) => {
    const body = foreignFiles.get((req.url ?? '').split('?')[0]!);
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => foreignHost.listen(0, '127.0.0.1', resolve));
  log = logCollector();
  access = logCollector();
  wharf = await startWharf({
    accessLog: (text) => access.chunk(text),
    repositories: { remote: { type: 'remote', url: `${proxy.url}/api/docker/docker-local`, foreignLayers: { cache: true, allow: ['http://127.0.0.1:*/**'] } } },
    log: (line) => log.write(line),
  });
});
test.after(async () => {
  await wharf.cleanup();
  foreignHost.closeAllConnections();
  await new Promise((resolve) => foreignHost.close(resolve));
  await cdn.stop();
  await corrupting.stop();
  await proxy.stop();
  await upstream.cleanup();
});
test.before.each(() => {
  proxy.fault = 'none';
  proxy.redirectBlobsTo = null;
});

/** wharf_upstream_errors_total of the repository. */
async function upstreamErrors(): Promise<number> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  return Number(/^wharf_upstream_errors_total\{repository="remote"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** Pulls a blob whose fill fails: 200, then a cut body. Returns the one warn line about it. */
async function failedPull(name: string, digest: string): Promise<string> {
  const response = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${digest}`);
  assert.is(response.status, 200, 'the headers went out before the bytes were known to be wrong');
  let cut = false;
  await response.arrayBuffer().catch(() => { cut = true; });
  assert.ok(cut, 'the client was cut off');
  const line = await log.waitFor((text) => text.includes(digest), 10_000);
  assert.is(log.lines.filter((text) => text.includes(digest)).length, 1, 'one line per failed fill');
  assert.match(line, / warn remote: /);
  return line;
}

test('wrong bytes from the upstream: a warn line names the repository, blob, host and cause, and the metric counts it', async () => {
  const image = makeImage({ layers: 1, layerBytes: 100_000 });
  await pushImage(upstream.url, 'docker-local/team/app', image, '1');
  assert.is((await fetch(`${wharf.url}/v2/remote/team/app/manifests/1`, { headers: { Accept: OCI_MANIFEST } })).status, 200);
  const before = await upstreamErrors();
  proxy.fault = 'corrupt-blob';
  const line = await failedPull('team/app', image.layers[0]!.digest);
  assert.match(line, new URL(proxy.url).host);
  assert.match(line, 'digest');
  assert.is(await upstreamErrors(), before + 1);
  // The access log calls the cut "aborted", as it does a client that went away: the warn line says which.
  assert.match(await access.waitFor((text) => text.includes(image.layers[0]!.digest), 10_000), / MISS aborted$/);
});

test('wrong bytes from the CDN the upstream redirected to: the line names the CDN host, not its signed URL', async () => {
  const image = makeImage({ layers: 1, layerBytes: 100_000 });
  await pushImage(upstream.url, 'docker-local/team/cdn', image, '1');
  assert.is((await fetch(`${wharf.url}/v2/remote/team/cdn/manifests/1`, { headers: { Accept: OCI_MANIFEST } })).status, 200);
  const before = await upstreamErrors();
  proxy.redirectBlobsTo = cdn.url;
  const line = await failedPull('team/cdn', image.layers[0]!.digest);
  assert.match(line, new URL(cdn.url).host);
  assert.not.match(line, 'signature');
  assert.is(await upstreamErrors(), before + 1);
});

/** An image in the upstream whose one layer is foreign, at `url`, with its manifest cached in Wharf; returns the layer. */
async function foreignImage(name: string, url: string): Promise<Blob> {
  const layer = await pushForeignImage(upstream.url, `docker-local/${name}`, url, 70_000);
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/manifests/1`, { headers: { Accept: DOCKER_MANIFEST } })).status, 200);
  return layer;
}

test('wrong bytes from a foreign layer\'s host: the line names that host', async () => {
  const path = '/layers/win.tgz';
  const url = `http://127.0.0.1:${(foreignHost.address() as AddressInfo).port}${path}?sig=secret`;
  const layer = await foreignImage('team/win', url);
  foreignFiles.set(path, randomBytes(layer.bytes.length));
  const before = await upstreamErrors();
  const line = await failedPull('team/win', layer.digest);
  assert.match(line, new URL(url).host);
  assert.not.match(line, 'sig=');
  assert.match(line, 'digest');
  assert.is(await upstreamErrors(), before + 1);
});

test('a foreign layer\'s host that cannot be reached: 502, and a warn line naming the URL without its query', async () => {
  const closed = await freePort();
  const layer = await foreignImage('team/unreachable', `http://127.0.0.1:${closed}/layers/gone.tgz?sig=secret`);
  const before = await upstreamErrors();
  assert.is((await fetch(`${wharf.url}/v2/remote/team/unreachable/blobs/${layer.digest}`)).status, 502);
  const line = await log.waitFor((text) => text.includes(layer.digest), 10_000);
  assert.match(line, / warn remote: .*127\.0\.0\.1:\d+\/layers\/gone\.tgz: ECONNREFUSED/);
  assert.not.match(line, 'sig=');
  assert.is(await upstreamErrors(), before + 1);
});

test.run();
