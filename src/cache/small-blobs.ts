import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { RegistryError } from '../oci/errors.js';
import type { BlobStore, ByteRange } from '../store/blobs.js';

export interface SmallBlobOptions {
  /** Total bytes held in memory. */
  maxBytes: number;
  /** Blobs larger than this are always streamed from disk. */
  maxBlobBytes: number;
}

export const defaultSmallBlobOptions: SmallBlobOptions = { maxBytes: 64 << 20, maxBlobBytes: 64 << 10 };

/**
 * Reads blobs through an in-memory LRU for small ones (configs, tiny layers, artifacts): a hit
 * costs no file open, read and close. Blobs are immutable and named by digest, so an entry never
 * goes stale. Large blobs are streamed from disk as they always are.
 */
export class BlobReader {
  readonly #store: BlobStore;
  readonly #options: SmallBlobOptions;
  readonly #cache: LRUCache<string, Buffer>;

  constructor(store: BlobStore, options: SmallBlobOptions = defaultSmallBlobOptions) {
    this.#store = store;
    this.#options = options;
    this.#cache = new LRUCache<string, Buffer>({ maxSize: options.maxBytes, sizeCalculation: (value) => Math.max(1, value.length) });
  }

  async open(digest: string, size: number, range: ByteRange): Promise<Readable> {
    if (size > this.#options.maxBlobBytes) return this.#store.open(digest, range);
    let bytes = this.#cache.get(digest);
    if (!bytes) {
      bytes = await readFile(this.#store.pathOf(digest)).catch(() => {
        throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not on disk`, detail: { digest } });
      });
      if (bytes.length !== size) return this.#store.open(digest, range);
      this.#cache.set(digest, bytes);
    }
    const slice = bytes.subarray(range.start, range.end + 1);
    return Readable.from(slice.length > 0 ? [slice] : [], { objectMode: false });
  }
}
