import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { pushImage, seedImage } from '../helpers/registry.js';
import { freePort } from '../helpers/ports.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCdn, startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// Upstream authentication and failure handling, each against a real upstream.

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const servers: { cleanup?: () => Promise<void>; stop?: () => Promise<void> }[] = [];

test.after(async () => {
  for (const server of servers.reverse()) await (server.cleanup ?? server.stop)!();
});

async function wharfWithRemote(url: string, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const wharf = await startWharf({ repositories: { hub: { type: 'remote', url, ...extra } } });
  servers.push(wharf);
  return wharf;
}

test('Distribution behind htpasswd: Basic credentials from the config; wrong ones are DENIED', async () => {
  const distribution: Distribution = await startDistribution({ user: 'ci', password: 's3cret' });
  servers.push(distribution);
  const image = makeImage();
  await seedImage(distribution.url, 'team/private', image, '1', basic('ci', 's3cret'));
  const good = await wharfWithRemote(distribution.url, { username: 'ci', password: 's3cret' });
  const manifest = await fetch(`${good.url}/v2/hub/team/private/manifests/1`, { headers: { Accept: OCI_MANIFEST } });
  assert.is(manifest.status, 200);
  assert.is(manifest.headers.get('docker-content-digest'), image.digest);
  const layer = await fetch(`${good.url}/v2/hub/team/private/blobs/${image.layers[0]!.digest}`);
  assert.is(sha256(Buffer.from(await layer.arrayBuffer())), image.layers[0]!.digest);
  const bad = await wharfWithRemote(distribution.url, { username: 'ci', password: 'wrong' });
  const refused = await fetch(`${bad.url}/v2/hub/team/private/manifests/1`);
  assert.is(refused.status, 403);
  const body = await refused.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, 'username and password');
});

test('Bearer token flow: one token per scope, reused; blob redirects to another host carry no Authorization', async () => {
  const distribution = await startDistribution();
  servers.push(distribution);
  const proxy: CountingProxy = await startCountingProxy(distribution.url);
  servers.push(proxy);
  const cdn = await startCdn(distribution.url);
  servers.push(cdn);
  proxy.bearer = { user: 'robot', password: 'token-pass' };
  proxy.redirectBlobsTo = cdn.url;
  const image = makeImage({ layers: 2 });
  await seedImage(distribution.url, 'library/alpine', image, '3');
  const wharf = await wharfWithRemote(proxy.url, { username: 'robot', password: 'token-pass' });
  const manifest = await fetch(`${wharf.url}/v2/hub/library/alpine/manifests/3`, { headers: { Accept: OCI_MANIFEST } });
  assert.is(manifest.status, 200);
  for (const layer of image.layers) {
    const response = await fetch(`${wharf.url}/v2/hub/library/alpine/blobs/${layer.digest}`);
    assert.is(sha256(Buffer.from(await response.arrayBuffer())), layer.digest);
  }
  assert.is(proxy.counts['GET token'], 1, 'one token for repository:library/alpine:pull, cached');
  assert.ok(proxy.authorizations.some((a) => a.startsWith('Bearer ')), 'the registry got the token');
  assert.is(cdn.authorizations.length, 2, 'both layers came from the CDN');
  assert.equal(cdn.authorizations, ['', ''], 'no Authorization followed the redirect to another host');
});

test('a host the upstream redirects to cannot send the configured credentials to a token endpoint of its choosing', async () => {
  const distribution = await startDistribution();
  servers.push(distribution);
  const proxy: CountingProxy = await startCountingProxy(distribution.url);
  servers.push(proxy);
  // Answers every blob with a Bearer challenge whose realm is its own, and keeps what reaches that realm.
  const stolen: string[] = [];
  const hostile = createServer((req, res) => {
    if (req.url?.startsWith('/token')) stolen.push(req.headers.authorization ?? '');
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://localhost:${(hostile.address() as AddressInfo).port}/token",service="cdn"` }).end();
  });
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
  servers.push({ stop: () => new Promise<void>((resolve) => { hostile.closeAllConnections(); hostile.close(() => resolve()); }) });
  proxy.bearer = { user: 'robot', password: 'token-pass' };
  proxy.redirectBlobsTo = `http://localhost:${(hostile.address() as AddressInfo).port}`;
  const image = makeImage({ layers: 1 });
  await seedImage(distribution.url, 'library/alpine', image, '3');
  const wharf = await wharfWithRemote(proxy.url, { username: 'robot', password: 'token-pass' });
  assert.is((await fetch(`${wharf.url}/v2/hub/library/alpine/manifests/3`, { headers: { Accept: OCI_MANIFEST } })).status, 200);
  const layer = await fetch(`${wharf.url}/v2/hub/library/alpine/blobs/${image.layers[0]!.digest}`);
  assert.ok(layer.status >= 400, `the redirect target's refusal is the answer (${layer.status})`);
  await layer.arrayBuffer();
  assert.equal(stolen, [], 'no token request, so no credentials, went to the realm the redirect target named');
  proxy.redirectBlobsTo = null;
  const other = makeImage({ layers: 1 });
  await seedImage(distribution.url, 'library/busybox', other, '1');
  assert.is((await fetch(`${wharf.url}/v2/hub/library/busybox/manifests/1`, { headers: { Accept: OCI_MANIFEST } })).status, 200, 'the upstream\'s own token endpoint is still the one asked');
});

test('Wharf proxying Wharf through the Artifactory prefix', async () => {
  const upstream = await startWharf();
  servers.push(upstream);
  const image = makeImage({ layers: 2 });
  await pushImage(upstream.url, 'docker-local/team/app', image, '2.0');
  const wharf = await wharfWithRemote(`${upstream.url}/api/docker/docker-local`);
  const manifest = await fetch(`${wharf.url}/v2/hub/team/app/manifests/2.0`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(Buffer.from(await manifest.arrayBuffer()), image.manifest);
  const layer = await fetch(`${wharf.url}/v2/hub/team/app/blobs/${image.layers[1]!.digest}`);
  assert.equal(Buffer.from(await layer.arrayBuffer()), image.layers[1]!.bytes);
  const tags = await fetch(`${wharf.url}/v2/hub/team/app/tags/list`);
  assert.equal(await tags.json(), { name: 'hub/team/app', tags: ['2.0'] });
});

test('after offlineAfter failures the upstream is not asked again until retryAfter', async () => {
  const distribution = await startDistribution();
  servers.push(distribution);
  const proxy = await startCountingProxy(distribution.url);
  servers.push(proxy);
  let clock = Date.now();
  const wharf = await startWharf({ repositories: { hub: { type: 'remote', url: proxy.url, offlineAfter: 2, retryAfter: '1m' } }, storageNow: () => clock });
  servers.push(wharf);
  proxy.fault = 'down';
  for (let i = 0; i < 2; i++) assert.is((await fetch(`${wharf.url}/v2/hub/team/x/manifests/${i}`)).status, 502);
  const asked = proxy.counts['GET manifest'];
  const fast = await fetch(`${wharf.url}/v2/hub/team/x/manifests/again`);
  assert.is(fast.status, 503);
  assert.match(((await fast.json()) as { errors: { message: string }[] }).errors[0]!.message, 'marked offline');
  assert.is(proxy.counts['GET manifest'], asked, 'not asked while offline');
  clock += 2 * 60_000; // past retryAfter
  proxy.fault = 'none';
  const image = makeImage();
  await seedImage(distribution.url, 'team/x', image, 'back');
  assert.is((await fetch(`${wharf.url}/v2/hub/team/x/manifests/back`)).status, 200);
});

test('refused upstream credentials are reported every time and never mark the upstream offline', async () => {
  const distribution = await startDistribution();
  servers.push(distribution);
  const proxy = await startCountingProxy(distribution.url);
  servers.push(proxy);
  proxy.bearer = { user: 'robot', password: 'token-pass' };
  const wharf = await wharfWithRemote(proxy.url, { username: 'robot', password: 'wrong', offlineAfter: 2 });
  for (let i = 0; i < 4; i++) {
    const refused = await fetch(`${wharf.url}/v2/hub/team/x/manifests/${i}`);
    const message = ((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message;
    assert.not.match(message, 'marked offline', `pull ${i + 1}`);
    assert.match(message, 'configured credentials', `pull ${i + 1}`);
  }
  assert.is(proxy.counts['GET token'], 4, 'every pull asked the token endpoint again');
});

/** An upstream whose every answer is a Bearer challenge naming `realm`; stopped after the suite. */
async function challenging(realm: string): Promise<string> {
  const upstream = createServer((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="test"` }).end();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  servers.push({ stop: () => new Promise<void>((resolve) => { upstream.closeAllConnections(); upstream.close(() => resolve()); }) });
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
}

test('a token endpoint that never answers fails the pull at timeouts.response, and counts toward offlineAfter', async () => {
  // Accepts connections and never answers.
  let connections = 0;
  const silent = createTcpServer((socket) => { connections++; socket.on('error', () => undefined); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const open = new Set<import('node:net').Socket>();
  silent.on('connection', (socket) => { open.add(socket); socket.on('close', () => open.delete(socket)); });
  servers.push({ stop: () => new Promise<void>((resolve) => { for (const socket of open) socket.destroy(); silent.close(() => resolve()); }) });
  const url = await challenging(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/token`);
  const wharf = await wharfWithRemote(url, { timeouts: { response: '1s' }, offlineAfter: 2 });
  for (let i = 0; i < 2; i++) {
    // Bounded: without a timeout of its own the token request would wait undici's 300 s.
    const failed = await fetch(`${wharf.url}/v2/hub/team/x/manifests/${i}`, { signal: AbortSignal.timeout(10_000) });
    assert.is(failed.status, 502);
    const message = ((await failed.json()) as { errors: { message: string }[] }).errors[0]!.message;
    assert.match(message, 'token endpoint');
    assert.match(message, 'no answer within timeouts.response (1000 ms)');
  }
  const asked = connections;
  const offline = await fetch(`${wharf.url}/v2/hub/team/x/manifests/2`, { signal: AbortSignal.timeout(10_000) });
  assert.is(offline.status, 503);
  assert.match(((await offline.json()) as { errors: { message: string }[] }).errors[0]!.message, 'marked offline after 2 failures');
  assert.is(connections, asked, 'not asked while offline');
});

test('a token endpoint that refuses connections fails the pull at once, naming it', async () => {
  const url = await challenging(`http://127.0.0.1:${await freePort()}/token`);
  const wharf = await wharfWithRemote(url);
  const failed = await fetch(`${wharf.url}/v2/hub/team/x/manifests/1`, { signal: AbortSignal.timeout(10_000) });
  assert.is(failed.status, 502);
  assert.match(((await failed.json()) as { errors: { message: string }[] }).errors[0]!.message, /the token endpoint http:\/\/127\.0\.0\.1:\d+\/token of upstream .* is unreachable: ECONNREFUSED/);
});

/** A manifest GET through a remote whose upstream sends its token requests to a realm answering with `handler`. */
async function pullWithRealm(handler: Parameters<typeof createServer>[1]): Promise<Response> {
  const realm = createServer(handler);
  await new Promise<void>((resolve) => realm.listen(0, '127.0.0.1', resolve));
  servers.push({ stop: () => new Promise<void>((resolve) => { realm.closeAllConnections(); realm.close(() => resolve()); }) });
  const url = await challenging(`http://127.0.0.1:${(realm.address() as AddressInfo).port}/token`);
  const wharf = await wharfWithRemote(url);
  return fetch(`${wharf.url}/v2/hub/team/x/manifests/1`, { signal: AbortSignal.timeout(10_000) });
}

test('a token endpoint that answers something other than JSON is an upstream error (502), asked once', async () => {
  let asked = 0;
  const failed = await pullWithRealm((_req, res) => {
    asked++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('<html>maintenance</html>');
  });
  assert.is(failed.status, 502);
  assert.match(((await failed.json()) as { errors: { message: string }[] }).errors[0]!.message, /token endpoint .* no JSON/);
  assert.is(asked, 1);
});

test('a token endpoint that sends without end is read no further than 1 MiB: 502 naming it', async () => {
  let sent = 0;
  const chunk = Buffer.alloc(64 << 10, 0x20);
  const failed = await pullWithRealm((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // Sends until the reader goes: without a limit, the pull waits (and holds memory) for ever.
    const more = () => { while (!res.destroyed && res.write(chunk)) sent += chunk.length; };
    res.on('drain', more);
    more();
  });
  assert.is(failed.status, 502);
  assert.match(((await failed.json()) as { errors: { message: string }[] }).errors[0]!.message, /the upstream token endpoint http:\/\/127\.0\.0\.1:\d+\/token sent more than 1048576 bytes/);
  assert.ok(sent < 16 << 20, `the realm sent ${sent} bytes before Wharf stopped reading`);
});

test('a token endpoint that redirects is not followed: the credentials go to the realm alone', async () => {
  const elsewhere: string[] = [];
  const other = createServer((req, res) => {
    elsewhere.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const realm = createServer((_req, res) => {
    res.writeHead(302, { location: `http://localhost:${(other.address() as AddressInfo).port}/token` }).end();
  });
  await new Promise<void>((resolve) => realm.listen(0, '127.0.0.1', resolve));
  for (const server of [other, realm]) servers.push({ stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) });
  const url = await challenging(`http://127.0.0.1:${(realm.address() as AddressInfo).port}/token`);
  const wharf = await wharfWithRemote(url, { username: 'robot', password: 'token-pass' });
  const failed = await fetch(`${wharf.url}/v2/hub/team/x/manifests/1`, { signal: AbortSignal.timeout(10_000) });
  assert.is(failed.status, 502);
  assert.match(((await failed.json()) as { errors: { message: string }[] }).errors[0]!.message, 'answered 302');
  assert.equal(elsewhere, [], 'nothing reached the host the realm redirected to');
});

test.run();
