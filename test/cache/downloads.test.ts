import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Download } from '../../src/cache/download.js';
import { BlobDownloads } from '../../src/cache/downloads.js';
import { fillReader } from '../../src/cache/fill-reader.js';
import { openStore, type BlobDriver, type BlobWriter, type Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/server.js';

// A download followed by readers that start early, late (part from the file, part from memory)
// and mid-blob, against a real blob store and an upstream fed here chunk by chunk.

const mib = 1 << 20;
const content = randomBytes(12 * mib);
const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Polls `done` every 5 ms; fails after 30 s (a machine much slower than this one still gets there). */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done() && Date.now() < deadline) await sleep(5);
  assert.ok(done(), 'timed out');
}

let store: Store;
test.before(async () => { store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true }); });
test.after(() => store.close());

const keep = async (_size: number, place: () => Promise<void>) => { await place(); };

test('readers get bytes as they arrive; a late reader reads the file, then memory; all of them get the blob', async () => {
  const upstream = new PassThrough({ highWaterMark: mib });
  let committed = 0;
  const downloads = new BlobDownloads(store.blobs, { memory: 256 * mib });
  const { fill } = await downloads.join(digest, { fetch: async () => ({ size: content.length, body: upstream, from: 'upstream.test' }), commit: async (size, place) => { await place(); committed = size; } });
  const download = fill as Download;
  const early = collect(fillReader(fill, store.blobs, { start: 0, end: content.length - 1 }));
  // The first chunk is offered to readers on arrival, before it is on disk (of a blob of known
  // size only the very last byte waits for verification).
  let first: { available: number; written: number } | null = null;
  download.once('progress', () => { first = { available: download.available, written: download.written }; });
  upstream.write(content.subarray(0, mib));
  await until(() => first !== null);
  assert.equal(first, { available: mib, written: 0 });
  for (let i = 1; i < 8; i++) upstream.write(content.subarray(i * mib, (i + 1) * mib));
  await until(() => download.written === 8 * mib);
  assert.ok(download.memoryStart > 0, 'the start of the blob is only in the file now');
  const late = collect(fillReader(fill, store.blobs, { start: 0, end: content.length - 1 }));
  const from = download.memoryStart - 1000; // across the line between file and memory
  const middle = collect(fillReader(fill, store.blobs, { start: from, end: 10 * mib }));
  upstream.end(content.subarray(8 * mib));
  const [a, b, c] = await Promise.all([early, late, middle]);
  assert.ok(a.equals(content), 'early reader');
  assert.ok(b.equals(content), 'late reader');
  assert.ok(c.equals(content.subarray(from, 10 * mib + 1)), 'mid-blob reader');
  await until(() => committed === content.length);
  assert.is((await store.blobs.stat(digest))?.size, content.length);
  // A reader that starts after the commit reads the committed blob.
  assert.ok((await collect(fillReader(fill, store.blobs, { start: 5, end: 10 * mib }))).equals(content.subarray(5, 10 * mib + 1)), 'reader after the commit');
  assert.is(downloads.memoryHeld, 0, 'memory given back');
});

/** The store's driver, with every writer held back (corked) until `release`: a disk that has not kept up. */
function slowDisk(): { driver: BlobDriver; release: () => void } {
  const writers: BlobWriter[] = [];
  const driver = Object.create(store.blobs) as BlobDriver;
  driver.writer = (options) => {
    const writer = store.blobs.writer(options);
    writer.cork();
    writers.push(writer);
    return writer;
  };
  return { driver, release: () => writers.forEach((writer) => writer.uncork()) };
}

/** `driver` with every writer's cancel held until `release`: a failed download that is still cleaning up. */
function slowCleanup(driver: BlobDriver): { driver: BlobDriver; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const held = Object.create(driver) as BlobDriver;
  held.writer = (options) => {
    const writer = driver.writer(options);
    const cancel = writer.cancel.bind(writer);
    writer.cancel = async () => {
      await released;
      await cancel();
    };
    return writer;
  };
  return { driver: held, release };
}

test('clients run ahead of the disk: the whole verified blob reaches them before a byte is written; the commit waits for the writer', async () => {
  const other = randomBytes(3 * mib + 5);
  const otherDigest = `sha256:${createHash('sha256').update(other).digest('hex')}`;
  const disk = slowDisk();
  const downloads = new BlobDownloads(disk.driver, { memory: 256 * mib });
  const upstream = new PassThrough();
  let committed = false;
  const { fill } = await downloads.join(otherDigest, { fetch: async () => ({ size: other.length, body: upstream, from: 'upstream.test' }), commit: async (_size, place) => { await place(); committed = true; } });
  const received = collect(fillReader(fill, disk.driver, { start: 0, end: other.length - 1 }));
  upstream.end(other);
  assert.ok((await received).equals(other), 'every byte, the last one included');
  assert.is((fill as Download).written, 0, 'nothing was on disk yet');
  assert.is(fill.state, 'verified');
  assert.not.ok(committed);
  assert.is(await store.blobs.stat(otherDigest), null, 'not in the store before the writer is done');
  disk.release();
  await until(() => committed);
  assert.is((await store.blobs.stat(otherDigest))?.size, other.length);
});

test('the memory window bounds what all downloads hold ahead of their writers', async () => {
  const blobs = [randomBytes(6 * mib + 1), randomBytes(6 * mib + 2)];
  const disk = slowDisk();
  const downloads = new BlobDownloads(disk.driver, { memory: 4 * mib });
  const upstreams = blobs.map(() => new PassThrough({ highWaterMark: 64 << 10 }));
  const fills = await Promise.all(blobs.map(async (bytes, i) => (await downloads.join(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, {
    fetch: async () => ({ size: bytes.length, body: upstreams[i]!, from: 'upstream.test' }), commit: keep,
  })).fill));
  let finished = 0;
  const readers = fills.map((fill, i) => collect(fillReader(fill, disk.driver, { start: 0, end: blobs[i]!.length - 1 })).finally(() => finished++));
  // Offer everything in 64 KiB chunks, as undici delivers it; the downloads stop taking it at the window.
  blobs.forEach((bytes, i) => {
    for (let at = 0; at < bytes.length; at += 64 << 10) upstreams[i]!.write(bytes.subarray(at, at + (64 << 10)));
    upstreams[i]!.end();
  });
  await until(() => upstreams.every((upstream) => upstream.isPaused()));
  assert.ok(downloads.memoryHeld >= 4 * mib && downloads.memoryHeld < 4 * mib + 2 * (64 << 10), `held ${downloads.memoryHeld}`);
  assert.ok(upstreams.every((upstream) => upstream.readableLength > 0), 'the rest waits in the upstream');
  assert.ok(fills.every((fill) => fill.state === 'running'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(finished, 0, 'readers wait for the window, they do not get past it');
  disk.release();
  const results = await Promise.all(readers);
  results.forEach((bytes, i) => assert.ok(bytes.equals(blobs[i]!), `blob ${i}`));
  await until(() => fills.every((fill) => fill.state === 'committed'));
  assert.is(downloads.memoryHeld, 0);
});

test('a failed download cuts its readers at once; a pull after that fetches afresh while the failed one still cleans up', async () => {
  const bytes = randomBytes(mib + 3);
  const blobDigest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  // Held: the writers' batches (corked) and the failed download's cleanup (its writer's cancel).
  const disk = slowDisk();
  const cleanup = slowCleanup(disk.driver);
  const downloads = new BlobDownloads(cleanup.driver, { memory: 256 * mib });
  const corrupt = new PassThrough();
  const first = await downloads.join(blobDigest, { fetch: async () => ({ size: bytes.length, body: corrupt, from: 'upstream.test' }), commit: keep });
  let outcome: string | null = null;
  void collect(fillReader(first.fill, cleanup.driver, { start: 0, end: bytes.length - 1 })).then(() => 'whole', (error: Error) => error.message).then((text) => { outcome = text; });
  corrupt.end(Buffer.from(bytes.map((byte) => byte ^ 0xff)));
  await until(() => outcome !== null);
  assert.match(outcome!, 'the upstream sent content with digest sha256:', 'the reader is cut, before the download has cleaned up');
  let fetched = 0;
  const second = await downloads.join(blobDigest, { fetch: async () => { fetched++; return { size: bytes.length, body: Readable.from([bytes]), from: 'upstream.test' }; }, commit: keep });
  assert.ok(second.started, 'a download of its own, not the failed one');
  assert.is(fetched, 1);
  disk.release();
  assert.ok((await collect(fillReader(second.fill, cleanup.driver, { start: 0, end: bytes.length - 1 }))).equals(bytes));
  cleanup.release();
  await downloads.idle();
  assert.is(second.fill.state, 'committed');
  assert.is((await store.blobs.stat(blobDigest))?.size, bytes.length);
});

test.run();
