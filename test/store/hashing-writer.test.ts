import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HashingFileWriter } from '../../src/store/blobs/hashing.js';
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

test.run();
