import { createReadStream } from 'node:fs';
import type { Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readChunkBytes } from './blobs.js';

/** A pass-through that feeds every chunk to `hash` and counts the bytes, in the same pass. */
export function hashThrough(hash: Hash): { stream: Transform; bytes: () => number } {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  return { stream, bytes: () => bytes };
}

/** Hashes a whole file, streaming. */
export async function hashFile(path: string, hash: Hash): Promise<{ hash: Hash; size: number }> {
  const through = hashThrough(hash);
  await pipeline(createReadStream(path, { highWaterMark: readChunkBytes }), through.stream, async function* (source) {
    for await (const _chunk of source) { /* drain */ }
  });
  return { hash, size: through.bytes() };
}
