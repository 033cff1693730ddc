import { createHash, randomBytes } from 'node:crypto';
import { createServer, get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Download, Fill } from '../../src/cache/download.js';
import { BlobDownloads } from '../../src/cache/downloads.js';
import { fillReader } from '../../src/cache/fill-reader.js';
import { openStore, type Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/server.js';

// What a cold pull keeps in memory for its readers, and how it hands memory to a client: against
// a real blob store, with an upstream fed here chunk by chunk.

const mib = 1 << 20;

function blob(size: number): { bytes: Buffer; digest: string } {
  const bytes = randomBytes(size);
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves once `done` holds, checked at each of the fill's progress events; fails after 10 s. */
function whenProgress(fill: Fill, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no such progress within 10 s')), 10_000);
    const check = () => {
      if (!done()) return;
      clearTimeout(timer);
      fill.off('progress', check);
      resolve();
    };
    fill.on('progress', check);
    check();
  });
}

let store: Store;
test.before(async () => { store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true }); });
test.after(() => store.close());

const keep = async (_size: number, place: () => Promise<void>) => { await place(); };

test('written bytes stay in memory for a reader that has not had them, until the window needs the room; a stalled reader never holds the upstream', async () => {
  const { bytes, digest } = blob(12 * mib);
  const downloads = new BlobDownloads(store.blobs, { memory: 4 * mib });
  const upstream = new PassThrough({ highWaterMark: 64 << 10 });
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  const download = fill as Download;
  const stalled = fillReader(fill, store.blobs, { start: 0, end: bytes.length - 1 }); // not read until the end
  upstream.write(bytes.subarray(0, 2 * mib));
  await whenProgress(fill, () => download.written === 2 * mib);
  assert.is(download.memoryStart, 0, 'the written 2 MiB are still in memory for the reader');
  assert.is(downloads.memoryHeld, 2 * mib);
  for (let at = 2 * mib; at < bytes.length; at += 64 << 10) upstream.write(bytes.subarray(at, at + (64 << 10)));
  upstream.end();
  await whenProgress(fill, () => fill.state === 'committed' || fill.state === 'failed');
  assert.is(fill.state, 'committed', 'the download finished without the stalled reader');
  assert.is(downloads.memoryHeld, 0);
  assert.ok((await collect(stalled)).equals(bytes), 'the stalled reader gets the blob from storage');
});

test('a reader that keeps up lets memory go as soon as the writer has written', async () => {
  const { bytes, digest } = blob(6 * mib);
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const upstream = new PassThrough();
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  const download = fill as Download;
  const reader = fillReader(fill, store.blobs, { start: 0, end: bytes.length - 1 });
  const chunks: Buffer[] = [];
  reader.on('data', (chunk: Buffer) => chunks.push(chunk));
  upstream.write(bytes.subarray(0, 4 * mib));
  await whenProgress(fill, () => download.written === 4 * mib && chunks.length > 0);
  assert.is(download.memoryStart, 4 * mib, 'written and sent: nothing kept');
  upstream.end(bytes.subarray(4 * mib));
  await new Promise((resolve) => reader.once('end', resolve));
  assert.ok(Buffer.concat(chunks).equals(bytes));
});

test('the writer gets the upstream pieces in batches of 1 MiB, not one write per piece', async () => {
  const piece = 64 << 10;
  const { bytes, digest } = blob(2 * mib + 7);
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const upstream = new PassThrough();
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  const download = fill as Download;
  const written = new Set<number>();
  fill.on('progress', () => written.add(download.written));
  for (let at = 0; at < 2 * mib; at += piece) upstream.write(bytes.subarray(at, at + piece));
  await whenProgress(fill, () => download.written === 2 * mib);
  assert.equal([...written].filter((bytes) => bytes > 0), [mib, 2 * mib], 'two writes of 1 MiB');
  upstream.end(bytes.subarray(2 * mib));
  await whenProgress(fill, () => fill.state === 'committed');
  assert.is((await store.blobs.stat(digest))?.size, bytes.length, 'the short last batch is written at the end');
});

test('sent into a writable, the pieces that arrive together go out in one write', async () => {
  const piece = 4096;
  const { bytes, digest } = blob(64 * piece);
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const upstream = new PassThrough();
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  const writes: number[] = [];
  const received: Buffer[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(1);
      received.push(chunk);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.length);
      received.push(...chunks.map(({ chunk }) => chunk as Buffer));
      callback();
    },
  });
  const finished = new Promise((resolve) => destination.once('finish', resolve));
  let sent = 0;
  const body = fillReader(fill, store.blobs, { start: 0, end: bytes.length - 1 });
  body.on('sent', (count: number) => { sent += count; });
  body.sendTo(destination);
  for (let at = 0; at < bytes.length; at += piece) upstream.write(bytes.subarray(at, at + piece));
  upstream.end();
  await finished;
  assert.ok(Buffer.concat(received).equals(bytes), 'every byte, in order');
  assert.is(sent, bytes.length, 'the bytes sent are counted');
  assert.ok(writes.length <= 3, `64 pieces in ${writes.length} writes (${writes.join(', ')} pieces each)`);
});

test('sent into a writable, a download that fails destroys it before the last byte', async () => {
  const { bytes, digest } = blob(2 * mib);
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const upstream = new PassThrough();
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  let received = 0;
  const destination = new Writable({ write(chunk: Buffer, _encoding, callback) { received += chunk.length; callback(); } });
  const closed = new Promise<Error | null>((resolve) => destination.once('error', resolve).once('close', () => resolve(null)));
  const body = fillReader(fill, store.blobs, { start: 0, end: bytes.length - 1 });
  const failed = new Promise<Error>((resolve) => body.once('error', resolve));
  body.sendTo(destination);
  const wrong = Buffer.from(bytes);
  wrong[100] ^= 1;
  upstream.end(wrong);
  const error = await closed;
  assert.ok(error, 'the destination is destroyed with an error');
  assert.match((await failed).message, /digest/);
  assert.ok(received < bytes.length, `${received} bytes of ${bytes.length} reached it`);
  assert.is(await store.blobs.stat(digest), null, 'nothing committed');
});

test('sent into an HTTP response, the status and headers go before the upstream has sent a byte', async () => {
  const { bytes, digest } = blob(mib);
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const upstream = new PassThrough();
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: bytes.length, body: upstream, from: 'upstream.test' }), commit: keep });
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Length': bytes.length, 'Docker-Content-Digest': digest });
    fillReader(fill, store.blobs, { start: 0, end: bytes.length - 1 }).sendTo(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response head within 10 s')), 10_000);
      get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      }).once('error', reject);
    });
    assert.is((fill as Download).received, 0, 'the head came before any byte of the blob');
    assert.is(response.headers['docker-content-digest'], digest);
    const body = collect(response);
    upstream.end(bytes);
    assert.ok((await body).equals(bytes), 'then the whole blob');
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
