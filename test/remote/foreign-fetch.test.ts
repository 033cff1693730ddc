import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DOCKER_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Blob } from '../helpers/images.js';
import { logCollector, type LogCollector } from '../helpers/logs.js';
import { manualClock, type ManualClock } from '../helpers/manual-clock.js';
import { errorCode, pushForeignImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// Foreign-layer fetches go through the remote repository's own connections and timeouts, as its
// upstream requests do; a redirect from a foreign host is followed only where the allowlist
// permits; a refused layer is logged once per digest and hour, however many pulls meet it.
// The foreign hosts are loopback listeners that record what reaches them.

interface Host { server: Server; port: number; requests: { url: string; headers: IncomingHttpHeaders }[] }

/** A plain HTTP host: `answer` says what each path gets. */
async function host(answer: (url: string) => { status: number; headers?: Record<string, string>; body?: Buffer }): Promise<Host> {
  const listener: Host = { server: createServer((req, res) => {
    listener.requests.push({ url: req.url ?? '', headers: req.headers });
    const { status, headers = {}, body } = answer(req.url ?? '');
    res.writeHead(status, body ? { ...headers, 'content-length': body.length } : headers).end(body);
  }), port: 0, requests: [] };
  await new Promise<void>((resolve) => listener.server.listen(0, '127.0.0.1', resolve));
  listener.port = (listener.server.address() as AddressInfo).port;
  return listener;
}

const files = new Map<string, Buffer>();
const redirects = new Map<string, string>();
let foreign: Host;
let secret: Host;
/** Accepts TCP and never says a word: a TLS handshake with it never completes (the connect timeout's case). */
let silent: TcpServer;
const held = new Set<Socket>();
let upstream: TestServer;
let wharf: TestServer;
let log: LogCollector;
let clock: ManualClock;

test.before(async () => {
  foreign = await host((url) => {
    const location = redirects.get(url);
    if (location) return { status: 302, headers: { location } };
    const body = files.get(url);
    return body ? { status: 200, body } : { status: 404 };
  });
  secret = await host(() => ({ status: 200, body: Buffer.from('secret') }));
  silent = createTcpServer((socket) => { held.add(socket); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  upstream = await startWharf();
  log = logCollector();
  clock = manualClock();
  wharf = await startWharf({
    repositories: {
      remote: {
        type: 'remote', url: `${upstream.url}/api/docker/docker-local`, username: 'puller', password: 'upstream-secret',
        // The response timeout is long: a connect that hangs must be cut by timeouts.connect.
        timeouts: { connect: '1s', response: '60s' },
        foreignLayers: { cache: true, allow: [`http://127.0.0.1:${foreign.port}/layers/**`, `https://127.0.0.1:${(silent.address() as AddressInfo).port}/**`] },
      },
      // The other way round: connections come at once, an answer that never comes is cut by timeouts.response.
      quick: {
        type: 'remote', url: `${upstream.url}/api/docker/docker-local`, timeouts: { connect: '60s', response: '1s' },
        foreignLayers: { cache: true, allow: [`http://127.0.0.1:${(silent.address() as AddressInfo).port}/**`] },
      },
    },
    log: (line) => log.write(line),
    storageNow: clock.now,
  });
});
test.after(async () => {
  await wharf.cleanup();
  await upstream.cleanup();
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
  for (const { server } of [foreign, secret]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

let images = 0;
/** An image in the upstream whose one layer is foreign, at `url`, with its manifest cached in Wharf's `repository`. */
async function foreignImage(url: string, repository = 'remote'): Promise<{ name: string; layer: Blob }> {
  const name = `team/foreign${images++}`;
  const layer = await pushForeignImage(upstream.url, `docker-local/${name}`, url, 5000);
  assert.is((await fetch(`${wharf.url}/v2/${repository}/${name}/manifests/1`, { headers: { Accept: DOCKER_MANIFEST } })).status, 200);
  return { name, layer };
}

/** wharf_http_requests_total of blob GETs and HEADs answered 403. */
async function blobRefusals(): Promise<number> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  return [...text.matchAll(/^wharf_http_requests_total\{route="blob",method="(?:GET|HEAD)",status="403"\} (\S+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

test('a foreign host that takes the connection and never completes TLS is cut at timeouts.connect, which the log names', async () => {
  const { name, layer } = await foreignImage(`https://127.0.0.1:${(silent.address() as AddressInfo).port}/layer.tgz`);
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`)).status, 502);
  const line = await log.waitFor((text) => text.includes(layer.digest), 20_000);
  assert.match(line, 'no connection within timeouts.connect (1000 ms)');
  assert.ok(held.size > 0, 'the connection was accepted: the TLS handshake is what never came');
});

test('a foreign host that takes the connection and never answers is cut at timeouts.response, which the log names', async () => {
  const { name, layer } = await foreignImage(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/layer.tgz`, 'quick');
  assert.is((await fetch(`${wharf.url}/v2/quick/${name}/blobs/${layer.digest}`)).status, 502);
  const line = await log.waitFor((text) => text.includes(layer.digest), 20_000);
  assert.match(line, 'no answer within timeouts.response (1000 ms)');
});

test('a redirect to a URL the allowlist permits is followed, without credentials', async () => {
  const { name, layer } = await foreignImage(`http://127.0.0.1:${foreign.port}/layers/moved.tgz`);
  redirects.set('/layers/moved.tgz', `http://127.0.0.1:${foreign.port}/layers/here.tgz`);
  files.set('/layers/here.tgz', layer.bytes);
  const response = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`);
  assert.is(response.status, 200);
  assert.equal(Buffer.from(await response.arrayBuffer()), layer.bytes);
  assert.equal(foreign.requests.map((request) => request.url), ['/layers/moved.tgz', '/layers/here.tgz']);
  assert.ok(foreign.requests.every((request) => request.headers.authorization === undefined), 'no Authorization to a foreign host');
});

test('a redirect out of the allowlist is not followed: 502, the target is never contacted, and the log says why', async () => {
  const { name, layer } = await foreignImage(`http://127.0.0.1:${foreign.port}/layers/away.tgz`);
  redirects.set('/layers/away.tgz', `http://127.0.0.1:${secret.port}/layers/away.tgz?sig=1`);
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`)).status, 502);
  const line = await log.waitFor((text) => text.includes(layer.digest), 10_000);
  assert.match(line, `redirected to http://127.0.0.1:${secret.port}/layers/away.tgz, which foreignLayers.allow does not permit`);
  assert.not.match(line, 'sig=');
  assert.is(secret.requests.length, 0, 'the redirect target was not contacted');
});

test('redirects are followed 5 times at most', async () => {
  const { name, layer } = await foreignImage(`http://127.0.0.1:${foreign.port}/layers/loop.tgz`);
  redirects.set('/layers/loop.tgz', '/layers/loop.tgz');
  const asked = foreign.requests.length;
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`)).status, 502);
  assert.match(await log.waitFor((text) => text.includes(layer.digest), 10_000), 'loop.tgz: redirected more than 5 times');
  assert.is(foreign.requests.length - asked, 6, 'the URL and 5 redirects');
});

test('a refused foreign layer is logged once per digest and hour, however many requests meet it', async () => {
  const refused = await foreignImage(`http://127.0.0.1:${secret.port}/layers/one.tgz`);
  const other = await foreignImage(`http://127.0.0.1:${secret.port}/layers/two.tgz`);
  const lines = (digest: string) => log.lines.filter((text) => text.includes(digest) && text.includes('permits none of them'));
  const pull = async ({ name, layer }: { name: string; layer: Blob }) => {
    for (const method of ['GET', 'HEAD', 'GET']) {
      const response = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`, { method });
      assert.is(response.status, 403);
      if (method === 'GET') assert.is(await errorCode(response), 'DENIED');
    }
  };
  const counted = await blobRefusals();
  await pull(refused);
  await pull(refused);
  await pull(other);
  assert.is(await blobRefusals(), counted + 9, 'every refusal is counted');
  assert.is(lines(refused.layer.digest).length, 1, 'six refusals of one layer, one line');
  assert.is(lines(other.layer.digest).length, 1, 'another layer has its own line');
  clock.advance(3_600_000);
  await pull(refused);
  assert.is(lines(refused.layer.digest).length, 1, 'still within the hour');
  clock.advance(1);
  await pull(refused);
  assert.is(lines(refused.layer.digest).length, 2, 'logged again once the hour has passed');
  assert.is(secret.requests.length, 0, 'a refused URL is never contacted');
});

test.run();
