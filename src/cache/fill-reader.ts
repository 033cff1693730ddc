import { Readable } from 'node:stream';
import type { BlobDriver, ByteRange } from '../store/index.js';
import type { Fill } from './download.js';

// A client's stream of a blob that is still being fetched: it follows the fill as it grows. Bytes
// come from memory when the fill still holds them, else from the writer's file, and once the blob
// is committed (the file handed to the store), from the store.

const readChunkBytes = 1 << 20;

/** A stream of `range` (inclusive) of the blob `fill` is fetching. */
export function fillReader(fill: Fill, store: BlobDriver, range: ByteRange): Readable {
  let position = range.start;
  let committed: Readable | null = null;
  const finished = () => fill.state === 'verified' || fill.state === 'committed';
  return new Readable({
    highWaterMark: readChunkBytes,
    read() {
      const pump = (): void => {
        if (committed) return void committed.resume();
        if (position > range.end) return void this.push(null);
        if (fill.state === 'failed') return void this.destroy(fill.error ?? new Error('download failed'));
        const limit = Math.min(range.end + 1, fill.available);
        if (position >= limit) {
          // Verified, the blob ends at its size (a length the upstream may not have announced).
          // A fill followed from another process is only readable up to what is written.
          if (finished() && position >= fill.size!) return void this.push(null);
          return void fill.once('progress', pump);
        }
        const fromMemory = fill.slice(position, limit);
        if (fromMemory) {
          position += fromMemory.length;
          return void this.push(fromMemory);
        }
        // From storage only what is written: memory holds everything from memoryStart on.
        const length = Math.min(readChunkBytes, Math.min(limit, fill.memoryStart) - position);
        if (length <= 0) return void fill.once('progress', pump);
        fill.readWritten(position, length).then((bytes: Buffer | null) => {
          if (bytes) {
            position += bytes.length;
            return void this.push(bytes);
          }
          return store.read(fill.digest, { start: position, end: Math.min(range.end, (fill.size ?? Infinity) - 1) }).then((rest) => {
            committed = rest;
            rest.on('data', (chunk: Buffer) => { if (!this.push(chunk)) rest.pause(); });
            rest.once('end', () => this.push(null));
            rest.once('error', (error) => this.destroy(error));
          });
        }).catch((error: Error) => this.destroy(error));
      };
      pump();
    },
    destroy(error, callback) {
      committed?.destroy();
      callback(error);
    },
  });
}
