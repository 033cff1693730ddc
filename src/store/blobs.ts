import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../oci/errors.js';
import { newHasher, parseDigest, type ParsedDigest } from '../oci/digest.js';
import { HashingFileWriter } from './hashing.js';
import { commitFile, removeQuietly, syncPath } from './files.js';
import type { Layout } from './layout.js';

/** Reads of 1 MiB instead of Node's 64 KiB default: 3-4x the throughput on large blobs here. */
export const readChunkBytes = 1024 * 1024;

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface WrittenBlob {
  digest: string;
  size: number;
}

/**
 * The content-addressed blob store: one immutable file per digest, shared by every repository.
 * Writes go to tmp/, are hashed in the same pass, synced, and renamed into place only when the
 * digest verifies, so a reader never sees a partial or wrong blob.
 */
export class BlobStore {
  readonly #layout: Layout;

  constructor(layout: Layout) {
    this.#layout = layout;
  }

  /** Size in bytes, or null when the blob is not on disk. */
  async size(digest: string): Promise<number | null> {
    const parsed = parseDigest(digest);
    if (!parsed) return null;
    try {
      return (await stat(this.#layout.blob(parsed))).size;
    } catch {
      return null;
    }
  }

  /**
   * Opens `range` of a blob for reading (the caller knows the size from the metadata). Resolves
   * once the file is open, so a missing file is an error here, not in the middle of a response.
   * Reads are at most 1 MiB, and no larger than the range: a 1 KiB blob costs one 1 KiB read.
   */
  async open(digest: string, range: ByteRange): Promise<Readable> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('BLOB_UNKNOWN', { detail: { digest } });
    if (range.end < range.start) return Readable.from([]); // the empty blob
    const highWaterMark = Math.max(1, Math.min(readChunkBytes, range.end - range.start + 1));
    const stream = createReadStream(this.#layout.blob(parsed), { highWaterMark, start: range.start, end: range.end });
    try {
      await once(stream, 'ready');
    } catch {
      throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not on disk`, detail: { digest } });
    }
    return stream;
  }

  /** Where a blob's bytes live (for whole-file reads of small blobs). */
  pathOf(digest: string): string {
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('BLOB_UNKNOWN', { detail: { digest } });
    return this.#layout.blob(parsed);
  }

  /** A fresh path under tmp/ for a file being written. */
  tempPath(): string {
    return join(this.#layout.tmp, randomUUID());
  }

  /**
   * Streams `source` to disk while hashing it; commits it under `expected` only if the bytes
   * match. On any failure the temp file is removed and nothing is committed.
   */
  async write(source: Readable, expected: ParsedDigest): Promise<WrittenBlob> {
    const temp = this.tempPath();
    const hash = newHasher(expected.algorithm);
    const writer = new HashingFileWriter(temp, { hash });
    try {
      await pipeline(source, writer);
      const digest = `${expected.algorithm}:${hash.digest('hex')}`;
      if (digest !== `${expected.algorithm}:${expected.hex}`) {
        throw new RegistryError('DIGEST_INVALID', { message: `content has digest ${digest}, not ${expected.algorithm}:${expected.hex}`, detail: { digest } });
      }
      await this.commit(temp, expected);
      return { digest, size: writer.bytes };
    } finally {
      await removeQuietly(temp);
    }
  }

  /** Moves a verified file into place; if the blob already exists the file is just dropped. */
  async commit(verifiedFile: string, digest: ParsedDigest): Promise<void> {
    const target = this.#layout.blob(digest);
    if ((await this.size(`${digest.algorithm}:${digest.hex}`)) !== null) return;
    await syncPath(verifiedFile);
    await commitFile(verifiedFile, target);
  }

  /** Removes a blob's bytes (readers that have it open keep reading). */
  async delete(digest: string): Promise<void> {
    await removeQuietly(this.pathOf(digest));
  }

  /** Creates the tree and empties tmp/ (left-overs of writes interrupted by a crash). */
  async prepare(): Promise<void> {
    await mkdir(this.#layout.blobs, { recursive: true });
    await removeQuietly(this.#layout.tmp);
    await mkdir(this.#layout.tmp, { recursive: true });
    await mkdir(this.#layout.uploads, { recursive: true });
  }
}
