import { connect as http2Connect } from 'node:http2';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { basic } from '../helpers/auth.js';
import { logCollector } from '../helpers/logs.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// A client that goes away before its handler has begun to read the body (the request and the end
// of the connection arrive together, while the handler still checks a password or looks up the
// session): the request ends as an aborted one, and what it was about stays usable. Each abandoned
// request signs in as a user not seen before, so that its password is hashed (off the main thread)
// before the handler reads the body.

let wharf: TestServer;
const operations = logCollector();
const authorization = basic('admin', 'admin-password-1');
const users = ['admin', 'pusher', 'promoter', 'uploader'];

test.before(async () => {
  wharf = await startWharf({
    auth: { enabled: true },
    users: users.map((name) => ({ name, password: `${name}-password-1`, admin: true })),
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }],
    log: operations.write,
  });
});
test.after(() => wharf.cleanup());

/** Sends the head and the first bytes of a request that announces 100, and closes the connection in the same write. */
function abandon(user: string, method: string, path: string, headers: Record<string, string> = {}): Promise<void> {
  const { hostname, port } = new URL(wharf.url);
  const head = Object.entries({ Host: 'x', Authorization: basic(user, `${user}-password-1`), 'Content-Length': '100', ...headers }).map(([key, value]) => `${key}: ${value}\r\n`).join('');
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.end(`${method} ${path} HTTP/1.1\r\n${head}\r\n{"abc`));
    socket.resume();
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

const aborted = (method: string, path: string) => operations.waitFor(`${method} ${path}: the client closed the connection before the request was complete`, 10_000);

test('an upload chunk abandoned before it was read: the session takes the next chunk', async () => {
  const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization } });
  const location = started.headers.get('location')!;
  await abandon('uploader', 'PATCH', location);
  await aborted('PATCH', location);
  const next = await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: 'hello', headers: { authorization } });
  assert.is(next.status, 202, 'the abandoned chunk no longer holds the session');
  assert.is(next.headers.get('range'), '0-4', 'nothing of the abandoned chunk was kept');
});

test('a manifest and a management request abandoned before their bodies were read end', async () => {
  const manifest = '/v2/docker-local/team/app/manifests/1.0';
  await abandon('pusher', 'PUT', manifest, { 'Content-Type': OCI_MANIFEST });
  await aborted('PUT', manifest);
  const promote = '/api/docker/docker-local/v2/promote';
  await abandon('promoter', 'POST', promote, { 'Content-Type': 'application/json' });
  await aborted('POST', promote);
  assert.is((await fetch(`${wharf.url}${manifest}`, { headers: { authorization } })).status, 404, 'nothing was stored');
});

test('an HTTP/2 chunk the client resets midway is not kept: HTTP/2 ends such a body as if it were whole', async () => {
  const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization } });
  const location = started.headers.get('location')!;
  const session = http2Connect(wharf.urls[1]!, { rejectUnauthorized: false });
  try {
    const stream = session.request({ ':method': 'PATCH', ':path': location, authorization });
    stream.on('error', () => undefined);
    // More than HTTP/2's first flow-control window: the write completes once the server reads the body.
    await new Promise((resolve) => stream.write(Buffer.alloc(200_000, 1), resolve));
    stream.destroy(); // RST_STREAM without END_STREAM
    await aborted('PATCH', location);
  } finally {
    session.destroy();
  }
  const status = await fetch(`${wharf.url}${location}`, { headers: { authorization } });
  assert.is(status.headers.get('range'), '0-0', 'nothing of the reset chunk was kept');
});

test.run();
