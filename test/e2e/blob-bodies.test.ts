import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually } from '../helpers/auth.js';
import { blob } from '../helpers/images.js';
import { pushBlob } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// Blob bodies as clients receive them over HTTP/1.1, HTTPS/1.1 and HTTP/2: every byte right (the
// filesystem driver sends files through reused buffers), ranges exact, and a client that goes
// away mid-body lets the server go on (on the filesystem it releases the file, on S3 the GET of the
// object: no stalled connection to the store is left). Both storage passes run it; every wait is
// bounded.

const big = blob(randomBytes((40 << 20) + 777));
const path = `/v2/docker-local/bodies/blobs/${big.digest}`;
let wharf: TestServer;
let ca: Buffer;
let plain: string;
let tls: string;

test.before(async () => {
  wharf = await startWharf({ listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }] });
  [plain, tls] = wharf.urls as [string, string];
  ca = await readFile(wharf.caPath!);
  await pushBlob(plain, 'docker-local/bodies', big);
});
test.after(() => wharf.cleanup());

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** How long one body may take. */
const bodyMs = 60_000;

async function collect(response: IncomingMessage): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) };
}

function http1(base: string, headers: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof collect>>> {
  const url = new URL(path, base);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    send(url, { headers, ca, signal: AbortSignal.timeout(bodyMs) }, (response) => collect(response).then(resolve, reject)).on('error', reject).end();
  });
}

function http2(headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; protocol: string }> {
  const session = connect(tls, { ca });
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers });
    stream.setTimeout(bodyMs, () => {
      session.destroy();
      reject(new Error(`h2: no body within ${bodyMs} ms`));
    });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (head) => { status = Number(head[':status']); });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, body: Buffer.concat(chunks), protocol: session.alpnProtocol ?? '' });
    });
    stream.on('error', reject);
  });
}

test('a 40 MiB blob arrives whole over HTTP/1.1, HTTPS/1.1 and HTTP/2', async () => {
  const expected = sha256(big.bytes);
  for (const base of [plain, tls]) {
    const { status, headers, body } = await http1(base);
    assert.is(status, 200);
    assert.is(headers['content-length'], String(big.bytes.length));
    assert.is(headers['docker-content-digest'], big.digest);
    assert.is(sha256(body), expected, base);
  }
  const h2 = await http2();
  assert.is(h2.protocol, 'h2');
  assert.is(h2.status, 200);
  assert.is(sha256(h2.body), expected, 'h2');
});

test('ranges are exact on every protocol', async () => {
  const [start, end] = [3_000_001, 9_437_185];
  const wanted = sha256(big.bytes.subarray(start, end + 1));
  for (const base of [plain, tls]) {
    const { status, headers, body } = await http1(base, { Range: `bytes=${start}-${end}` });
    assert.is(status, 206);
    assert.is(headers['content-range'], `bytes ${start}-${end}/${big.bytes.length}`);
    assert.is(sha256(body), wanted, base);
  }
  const h2 = await http2({ range: `bytes=${start}-${end}` });
  assert.is(h2.status, 206);
  assert.is(sha256(h2.body), wanted, 'h2');
});

/** Descriptors this process holds on the blob's file (the filesystem driver's). */
async function openOnBlob(): Promise<number> {
  const hex = big.digest.slice('sha256:'.length);
  const file = join(wharf.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === file) count++;
  }
  return count;
}

/**
 * This process's TCP connections to the object store (S3 pass) with bytes it has not read: a GET
 * of the object the server has stopped reading (an idle pooled connection has none). From
 * /proc/net/tcp (rx_queue), kept to the sockets in /proc/self/fd: the server runs in this process.
 */
async function stalledStoreReads(): Promise<number> {
  const port = Number(new URL((wharf.storage.blobs as { endpoint: string }).endpoint).port);
  const ours = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const inode = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`).catch(() => ''))?.[1];
    if (inode) ours.add(inode);
  }
  let count = 0;
  for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const remotePort = parseInt(fields[2]!.split(':')[1]!, 16);
    const unread = parseInt(fields[4]!.split(':')[1]!, 16);
    if (remotePort === port && unread > 0 && ours.has(fields[9]!)) count++;
  }
  return count;
}

for (const [kind, base] of [['HTTP', () => plain], ['HTTPS', () => tls]] as const) {
  test(`a client that stops reading and disconnects mid-body releases the file, or the S3 GET (${kind})`, async () => {
    const url = new URL(path, base());
    let response!: IncomingMessage;
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { ca, signal: AbortSignal.timeout(bodyMs) });
    await new Promise<void>((resolve, reject) => {
      request.on('response', (answer) => {
        response = answer;
        answer.pause(); // 40 MiB cannot fit in the socket buffers: the server stalls mid-body
        resolve();
      }).on('error', reject).end();
    });
    const onDisk = (wharf.storage.blobs as { driver?: string } | undefined)?.driver !== 's3';
    // What the server holds for the body: the blob's file, or a GET of the object it has stopped reading.
    const held = onDisk ? openOnBlob : stalledStoreReads;
    try {
      await eventually('the server holds the blob mid-body', async () => (await held()) === 1);
    } finally {
      response.destroy();
      request.destroy();
    }
    await eventually('the server lets go of it', async () => (await held()) === 0);
    // And the server goes on serving it.
    assert.is(sha256((await http1(base())).body), sha256(big.bytes));
  });
}

test.run();
