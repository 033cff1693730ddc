import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { FilesystemSessions } from '../../src/store/blobs/fs-sessions.js';
import { HashingFileWriter } from '../../src/store/blobs/hashing.js';
import { Writeback } from '../../src/store/blobs/writeback.js';
import { tempDir } from '../helpers/server.js';

// The hashing file writer gathers what arrives during a write into one writev of at most its
// batch size: upload sessions use small batches, so a PATCH's answer waits for little after its
// last byte (the chunked push bench).

test('what arrives during a write goes to disk in batches of at most the batch size, every byte in order', async () => {
  const chunks = Array.from({ length: 96 }, () => randomBytes(64 << 10)); // 6 MiB, as a socket hands a body over
  const path = join(await tempDir(), 'session');
  const hash = createHash('sha256');
  const batches: number[] = [];
  const writer = new HashingFileWriter(path, { hash, batchBytes: 1 << 20, onWritten: (_bytes, batchBytes) => batches.push(batchBytes) });
  for (const chunk of chunks) writer.write(chunk); // all at once: all but the first wait for a write in flight
  writer.end();
  await once(writer, 'finish');
  const content = Buffer.concat(chunks);
  assert.ok(batches.length >= 6, `${batches.length} batches`);
  assert.ok(batches.every((bytes) => bytes <= 1 << 20), `batches: ${batches.join(', ')}`);
  assert.equal(batches.reduce((sum, bytes) => sum + bytes, 0), content.length);
  assert.ok((await readFile(path)).equals(content));
  assert.is(hash.digest('hex'), createHash('sha256').update(content).digest('hex'));
});

test('an upload session reads its request on while a full batch is being written, holding at most 8 MiB', async () => {
  const dir = join(await tempDir(), 'uploads');
  const sessions = new FilesystemSessions({ dir, place: async () => undefined, writeback: new Writeback({ everyBytes: 1 << 30 }) });
  await sessions.prepare();
  await sessions.create('s1');
  const chunks = Array.from({ length: 160 }, () => randomBytes(64 << 10)); // 10 MiB, as a socket hands a chunk over
  const body = new Readable({ read() {} });
  // Nothing reaches the disk before the first turn of the event loop: every byte handed over is held.
  let handedWhenPaused: number | null = null;
  body.once('pause', () => { handedWhenPaused = chunks.length * (64 << 10) - body.readableLength; });
  const hash = createHash('sha256');
  const appending = sessions.append('s1', 0, body, hash);
  for (const chunk of chunks) body.push(chunk);
  body.push(null);
  assert.is(await appending, 10 << 20);
  // Held to one 2 MiB batch, the request was paused each time a full batch was in flight.
  assert.ok(handedWhenPaused !== null, 'the session never paused its request: nothing bounds what it holds');
  assert.ok(handedWhenPaused! >= 8 << 20 && handedWhenPaused! <= (8 << 20) + (64 << 10), `paused after ${handedWhenPaused} bytes`);
  const content = Buffer.concat(chunks);
  assert.ok((await readFile(join(dir, 's1'))).equals(content));
  assert.is(hash.digest('hex'), createHash('sha256').update(content).digest('hex'));
});

test.run();
