import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobDownloads } from '../../src/cache/downloads.js';
import { openStore, type Store } from '../../src/store/index.js';
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

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await sleep(5);
  assert.ok(done(), 'timed out');
}

let store: Store;
test.before(async () => { store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true }); });
test.after(() => store.close());

test('readers get bytes as they arrive; a late reader reads the file, then memory; all of them get the blob', async () => {
  const upstream = new PassThrough({ highWaterMark: mib });
  let committed = 0;
  const downloads = new BlobDownloads(store.blobs);
  const { download } = await downloads.join(digest, { fetch: async () => ({ size: content.length, body: upstream }), commit: async (size, place) => { await place(); committed = size; } });
  const early = collect(download.reader({ start: 0, end: content.length - 1 }));
  // The first chunk is offered to readers on arrival, before it is on disk (of a blob of known
  // size only the very last byte waits for verification).
  let first: { available: number; written: number } | null = null;
  download.once('progress', () => { first = { available: download.available, written: download.written }; });
  upstream.write(content.subarray(0, mib));
  await until(() => first !== null);
  assert.equal(first, { available: mib, written: 0 });
  for (let i = 1; i < 8; i++) upstream.write(content.subarray(i * mib, (i + 1) * mib));
  await until(() => download.written === 8 * mib);
  assert.ok(download.memory.start > 0, 'the start of the blob is only in the file now');
  const late = collect(download.reader({ start: 0, end: content.length - 1 }));
  const from = download.memory.start - 1000; // across the line between file and memory
  const middle = collect(download.reader({ start: from, end: 10 * mib }));
  upstream.end(content.subarray(8 * mib));
  const [a, b, c] = await Promise.all([early, late, middle]);
  assert.ok(a.equals(content), 'early reader');
  assert.ok(b.equals(content), 'late reader');
  assert.ok(c.equals(content.subarray(from, 10 * mib + 1)), 'mid-blob reader');
  await until(() => committed === content.length);
  assert.is((await store.blobs.stat(digest))?.size, content.length);
  // A reader that starts after the commit reads the committed blob.
  assert.ok((await collect(download.reader({ start: 5, end: 10 * mib }))).equals(content.subarray(5, 10 * mib + 1)), 'reader after the commit');
});

test.run();
