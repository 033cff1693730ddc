import { connect as http2Connect } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { errorCode, pushBlob, pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// What the OCI conformance suite, Distribution and careful clients expect at the edges of the
// spec: status codes for malformed input, names that mean one thing everywhere, and requests
// Node refuses below the app answered in the spec's JSON.

let wharf: TestServer;
let base: string;
let tlsUrl: string;
const access = logCollector();
const operations = logCollector();

test.before(async () => {
  wharf = await startWharf({
    baseDomain: 'registry.test',
    listeners: [
      { address: '127.0.0.1', port: 0 },
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } },
      { address: '127.0.0.1', port: 0, repository: 'docker-local' },
    ],
    repositories: { 'docker-local': { type: 'local' }, 'docker-hub': { type: 'remote', url: 'http://127.0.0.1:9' }, docker: { type: 'virtual', repositories: ['docker-local', 'docker-hub'] } },
    accessLog: access.write,
    log: operations.write,
  });
  base = wharf.url;
  tlsUrl = wharf.urls[1]!;
});
test.after(() => wharf.cleanup());

/** Sends raw bytes on a new connection and returns everything the server answered. */
function raw(url: string, text: string): Promise<string> {
  const { hostname, port, protocol } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = protocol === 'https:'
      ? tlsConnect({ host: hostname, port: Number(port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(text))
      : netConnect(Number(port), hostname, () => socket.write(text));
    let answer = '';
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString(); });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

function parseRaw(answer: string): { status: number; headers: string; body: { errors: { code: string; message: string }[] } } {
  const [head, body] = answer.split('\r\n\r\n', 2) as [string, string];
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: JSON.parse(body) };
}

test('GET and HEAD of a manifest with an invalid reference: 404 MANIFEST_UNKNOWN; PUT: 400 MANIFEST_INVALID', async () => {
  for (const method of ['GET', 'HEAD']) {
    const response = await fetch(`${base}/v2/docker-local/team/app/manifests/.INVALID_MANIFEST_NAME`, { method });
    assert.is(response.status, 404, method);
    if (method === 'GET') assert.is(await errorCode(response), 'MANIFEST_UNKNOWN');
  }
  const put = await fetch(`${base}/v2/docker-local/team/app/manifests/.bad`, { method: 'PUT', body: '{}', headers: { 'Content-Type': OCI_MANIFEST } });
  assert.is(put.status, 400);
  assert.is(await errorCode(put), 'MANIFEST_INVALID');
});

test('PATCH with a malformed Content-Range is 400; only an out-of-order range is 416', async () => {
  const started = await fetch(`${base}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
  const location = new URL(started.headers.get('location')!, base);
  for (const range of ['ten-eleven', '5-2', 'bytes=0-1']) {
    const malformed = await fetch(location, { method: 'PATCH', body: 'xy', headers: { 'Content-Range': range } });
    assert.is(malformed.status, 400, range);
    assert.is(await errorCode(malformed), 'BLOB_UPLOAD_INVALID');
  }
  const gap = await fetch(location, { method: 'PATCH', body: 'xy', headers: { 'Content-Range': '10-11' } });
  assert.is(gap.status, 416);
});

test('n=abc and n=-1 are 400 PAGINATION_NUMBER_INVALID on tags/list and _catalog', async () => {
  await pushImage(base, 'docker-local/team/app', makeImage(), '1.0');
  for (const path of ['/v2/docker-local/team/app/tags/list', '/v2/_catalog']) {
    for (const n of ['abc', '-1']) {
      const response = await fetch(`${base}${path}?n=${n}`);
      assert.is(response.status, 400, `${path}?n=${n}`);
      assert.is(await errorCode(response), 'PAGINATION_NUMBER_INVALID');
    }
  }
});

test('an unknown endpoint names the whole path the client asked for', async () => {
  for (const [url, path] of [
    [`${base}/v2/docker-local/team/app/nothing/here`, '/v2/docker-local/team/app/nothing/here'],
    [`${base}/api/docker/docker-local/v2/team/app/nothing`, '/api/docker/docker-local/v2/team/app/nothing'],
    [`${wharf.urls[2]}/v2/team/app/nothing`, '/v2/team/app/nothing'],
  ] as const) {
    const response = await fetch(url);
    assert.is(response.status, 404);
    const body = (await response.json()) as { errors: { message: string }[] };
    assert.match(body.errors[0]!.message, `no registry endpoint at ${path}`);
  }
});

test('a method a management route does not take is 405 with Allow, as on the registry routes, not "no endpoint"', async () => {
  for (const [method, path, allow] of [
    ['GET', '/api/docker/docker-local/v2/promote', 'POST'],
    ['POST', '/api/search/docker?image=x', 'GET, HEAD'],
    ['DELETE', '/api/repositories', 'GET, HEAD'],
    ['GET', '/api/system/storage/gc', 'POST'],
    ['GET', '/artifactory/docker-local/team/app', 'DELETE'],
    ['POST', '/api/docker/docker-local/info/team/app/1.0', 'GET, HEAD'],
  ] as const) {
    const response = await fetch(`${base}${path}`, { method });
    assert.is(response.status, 405, `${method} ${path}`);
    assert.is(response.headers.get('allow'), allow, `${method} ${path}`);
    assert.is(await errorCode(response), 'UNSUPPORTED');
  }
  assert.is((await fetch(`${base}/api/nothing/here`, { method: 'POST' })).status, 404, 'a path nothing serves is still 404');
});

test('/v2/ on a subdomain that names no repository answers as /v2/ does; the first image request says what is served', async () => {
  const ask = (path: string) => raw(base, `GET ${path} HTTP/1.1\r\nHost: nope.registry.test\r\nConnection: close\r\n\r\n`);
  const probe = await ask('/v2/');
  assert.match(probe, /^HTTP\/1\.1 200 /);
  assert.match(probe.toLowerCase(), 'docker-distribution-api-version: registry/2.0');
  const named = parseRaw(await ask('/v2/team/app/manifests/1.0'));
  assert.is(named.status, 404);
  assert.is(named.body.errors[0]!.code, 'NAME_UNKNOWN');
  assert.match(named.body.errors[0]!.message, 'no repository for host nope.registry.test; this registry serves docker-local.registry.test, docker-hub.registry.test');
});

test('a manifest whose descriptor size disagrees with the stored blob is refused, naming the descriptor', async () => {
  const image = makeImage({ layers: 2 });
  for (const item of [image.config, ...image.layers]) await pushBlob(base, 'docker-local/team/sizes', item);
  const manifest = JSON.parse(image.manifest.toString()) as { layers: { size: number }[] };
  manifest.layers[1]!.size += 1;
  const response = await putManifest(base, 'docker-local/team/sizes', 'wrong', Buffer.from(JSON.stringify(manifest)));
  assert.is(response.status, 400);
  const error = ((await response.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
  assert.is(error.code, 'MANIFEST_INVALID');
  assert.match(error.message, `layers[1] gives size ${image.layers[1]!.bytes.length + 1} for ${image.layers[1]!.digest}, but that blob in docker-local/team/sizes is ${image.layers[1]!.bytes.length} bytes`);
  assert.is((await fetch(`${base}/v2/docker-local/team/sizes/manifests/wrong`)).status, 404, 'nothing stored');
  // The same for an index entry that misstates its child manifest's size.
  assert.is((await putManifest(base, 'docker-local/team/sizes', 'right', image.manifest)).status, 201);
  const child = { ...descriptorOf({ digest: image.digest, bytes: image.manifest }, OCI_MANIFEST), size: image.manifest.length - 1 };
  const index = await putManifest(base, 'docker-local/team/sizes', 'index', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] })), OCI_INDEX);
  assert.is(index.status, 400);
  assert.match(((await index.json()) as { errors: { message: string }[] }).errors[0]!.message, 'manifests[0] gives size');
});

test('an encoded slash inside a name is refused with NAME_INVALID and stores nothing', async () => {
  const item = blob(Buffer.from('encoded slash'));
  const push = await fetch(`${base}/v2/docker-local/team%2Fapp/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes });
  assert.is(push.status, 400);
  assert.is(await errorCode(push), 'NAME_INVALID');
  assert.is((await fetch(`${base}/v2/docker-local/team/app/blobs/${item.digest}`, { method: 'HEAD' })).status, 404);
  for (const path of ['/v2/docker-local/team%2fapp/tags/list', '/api/docker/docker-local/v2/team%2Fapp/manifests/1.0', '/v2/docker-local%2Fteam/app/tags/list']) {
    const response = await fetch(`${base}${path}`);
    assert.is(response.status, 400, path);
    assert.is(await errorCode(response), 'NAME_INVALID');
  }
});

test('an encoded slash in a name is refused outside the registry routes too: Artifactory delete, info and storage APIs', async () => {
  await pushImage(base, 'docker-local/team/kept', makeImage(), '1.0');
  const paths: [string, string][] = [
    ['DELETE', '/artifactory/docker-local/team%2Fkept/1.0'],
    ['DELETE', '/artifactory/docker-local/team%2fkept'],
    ['GET', '/api/docker/docker-local/info/team%2Fkept/1.0'],
    ['GET', '/api/storage/docker-local/team%2Fkept/1.0/manifest.json'],
  ];
  for (const [method, path] of paths) {
    const response = await fetch(`${base}${path}`, { method });
    assert.is(response.status, 400, `${method} ${path}`);
    assert.is(await errorCode(response), 'NAME_INVALID');
  }
  assert.is((await fetch(`${base}/v2/docker-local/team/kept/manifests/1.0`, { method: 'HEAD' })).status, 200, 'the tag is still there');
});

test('pushing to a remote repository names the repositories that take pushes, and nothing that does not exist', async () => {
  const response = await fetch(`${base}/v2/docker-hub/team/app/blobs/uploads/`, { method: 'POST' });
  assert.is(response.status, 405);
  const message = ((await response.json()) as { errors: { message: string }[] }).errors[0]!.message;
  assert.is(message, 'cannot push blobs to docker-hub: it is a remote repository; push to a local repository (docker-local)');
  assert.is(response.headers.get('allow'), '', 'a 405 lists what the path takes (RFC 9110): here nothing');
  const manifest = await putManifest(base, 'docker-hub/team/app', '1', makeImage().manifest);
  assert.is(manifest.status, 405);
  assert.is(manifest.headers.get('allow'), 'GET, HEAD, DELETE', 'a remote repository\'s cached manifests are read and deleted');
});

test('every 405 carries Allow: a method an endpoint does not take, and Artifactory delete on a virtual repository', async () => {
  const method = await fetch(`${base}/v2/docker-local/team/app/tags/list`, { method: 'POST' });
  assert.is(method.status, 405);
  assert.is(method.headers.get('allow'), 'GET');
  const virtual = await fetch(`${base}/artifactory/docker/team/app/1`, { method: 'DELETE' });
  assert.is(virtual.status, 405);
  assert.is(await errorCode(virtual), 'UNSUPPORTED');
  assert.is(virtual.headers.get('allow'), '', 'the path takes DELETE only, which a virtual repository does not');
});

test('HTTP/1.1 without Host: 400 in the spec JSON with the API-version header, and a log line', async () => {
  for (const url of [base, tlsUrl]) {
    const answer = parseRaw(await raw(url, 'GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n'));
    assert.is(answer.status, 400, url);
    assert.match(answer.headers, 'docker-distribution-api-version: registry/2.0');
    assert.is(answer.body.errors[0]!.code, 'REQUEST_INVALID');
    assert.match(answer.body.errors[0]!.message, 'Host header');
  }
  await operations.waitFor('warn refused a request: 400 an HTTP/1.1 request needs a Host header');
  const garbled = parseRaw(await raw(base, 'BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.is(garbled.status, 400);
  assert.match(garbled.headers, 'docker-distribution-api-version: registry/2.0');
  assert.is(garbled.body.errors[0]!.code, 'REQUEST_INVALID');
  await operations.waitFor(/refused a request from 127\.0\.0\.1: 400 malformed HTTP request/);
});

test('one header limit, 16 KiB, on HTTP/1.1 (plain and TLS) and h2: 431 in the spec JSON, and a log line', async () => {
  const big = 'a'.repeat(17 * 1024);
  for (const url of [base, tlsUrl]) {
    const answer = parseRaw(await raw(url, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`));
    assert.is(answer.status, 431, url);
    assert.match(answer.headers, 'docker-distribution-api-version: registry/2.0');
    assert.is(answer.body.errors[0]!.code, 'REQUEST_HEADERS_TOO_LARGE');
    assert.match(answer.body.errors[0]!.message, 'over 16 KiB');
  }
  await operations.waitFor(/warn refused a request from 127\.0\.0\.1: 431 request headers are over 16 KiB/);
  // Under the limit is served on both.
  assert.is((await fetch(`${base}/v2/`, { headers: { 'X-Fine': 'a'.repeat(15 * 1024) } })).status, 200);
  const ca = await readFile(wharf.caPath!, 'utf8');
  const session = http2Connect(tlsUrl, { ca });
  try {
    const ask = (size: number) => new Promise<{ status: number; body: string; version: string | undefined }>((resolve, reject) => {
      const stream = session.request({ ':path': '/v2/', 'x-big': 'a'.repeat(size) });
      let status = 0;
      let version: string | undefined;
      let body = '';
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
        version = headers['docker-distribution-api-version'] as string | undefined;
      });
      stream.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      stream.on('end', () => resolve({ status, body, version }));
      stream.on('error', reject);
      stream.end();
    });
    const over = await ask(17 * 1024);
    assert.is(over.status, 431);
    assert.is(over.version, 'registry/2.0');
    assert.is((JSON.parse(over.body) as { errors: { code: string }[] }).errors[0]!.code, 'REQUEST_HEADERS_TOO_LARGE');
    assert.is((await ask(15 * 1024)).status, 200);
  } finally {
    session.close();
  }
});

test.run();
