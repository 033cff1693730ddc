import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { BlobDriver, ByteRange } from '../store/index.js';

export interface SmallBlobOptions {
  /** Total bytes held in memory. */
  maxBytes: number;
  /** Blobs larger than this are always streamed from the store. */
  maxBlobBytes: number;
}

export const defaultSmallBlobOptions: SmallBlobOptions = { maxBytes: 64 << 20, maxBlobBytes: 64 << 10 };

async function readWhole(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Reads blobs through an in-memory LRU for small ones (configs, tiny layers, artifacts): a hit
 * costs no storage round trip. Blobs are immutable and named by digest, so an entry never goes
 * stale. Large blobs are streamed from the store as they always are.
 */
export class BlobReader {
  readonly #store: BlobDriver;
  readonly #options: SmallBlobOptions;
  readonly #cache: LRUCache<string, Buffer>;

  constructor(store: BlobDriver, options: SmallBlobOptions = defaultSmallBlobOptions) {
    this.#store = store;
    this.#options = options;
    this.#cache = new LRUCache<string, Buffer>({ maxSize: options.maxBytes, sizeCalculation: (value) => Math.max(1, value.length) });
  }

  async open(digest: string, size: number, range: ByteRange): Promise<Readable> {
    if (size > this.#options.maxBlobBytes) return this.#store.read(digest, range);
    let bytes = this.#cache.get(digest);
    if (!bytes) {
      bytes = await readWhole(await this.#store.read(digest));
      if (bytes.length !== size) return this.#store.read(digest, range);
      this.#cache.set(digest, bytes);
    }
    const slice = bytes.subarray(range.start, range.end + 1);
    return Readable.from(slice.length > 0 ? [slice] : [], { objectMode: false });
  }
}
