import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fillReader } from '../../src/cache/fill-reader.js';
import { FollowedFill } from '../../src/cache/followed-fill.js';
import { parseDigest } from '../../src/oci/digest.js';
import { openStore, type Store } from '../../src/store/index.js';
import { eventually } from '../helpers/auth.js';
import { tempDir } from '../helpers/server.js';

// A fill another worker leads, read from its writer's spool file as progress notes arrive. The
// leader verifies the digest when the upstream has sent everything, often before its writer has
// written it all: a follower told 'verified' must read on up to the size, not stop at what is
// written (it used to: a short body under a full Content-Length, and the client waited forever).

const content = randomBytes(3 << 20);
const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
const half = 1 << 20;

let store: Store;
test.before(async () => { store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true }); });
test.after(() => store.close());

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a follower told "verified" with the writer behind reads on to the size, then the committed blob', async () => {
  let written = 0;
  const writer = store.blobs.writer({ algorithm: 'sha256', onWritten: (bytes) => { written = bytes; } });
  await new Promise((resolve) => writer.once('ready', resolve));
  writer.write(content.subarray(0, half));
  await eventually('the first part is written', async () => written === half);
  const fill = new FollowedFill(digest, store.blobs, { size: content.length, written: half, state: 'verified', error: null, spool: writer.id });
  let ended = false;
  const stream = fillReader(fill, store.blobs, { start: 0, end: content.length - 1 });
  stream.once('end', () => { ended = true; });
  const body = collect(stream);
  // The reader has what is written and waits for more (it listens for progress), not ended.
  await eventually('the reader waits for progress', async () => fill.listenerCount('progress') > 0);
  assert.not.ok(ended, 'the stream did not end at the written bytes');
  writer.write(content.subarray(half, 2 * half));
  await eventually('the second part is written', async () => written === 2 * half);
  fill.update({ size: content.length, written, state: 'verified', error: null, spool: writer.id });
  // The rest is committed before the follower hears of it: it reads the store from where it is.
  writer.write(content.subarray(2 * half));
  await new Promise((resolve) => writer.end(resolve));
  await writer.commit(parseDigest(digest)!);
  fill.update({ size: content.length, written: content.length, state: 'committed', error: null, spool: writer.id });
  assert.ok((await body).equals(content));
});

test.run();
