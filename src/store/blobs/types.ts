import type { Readable, Writable } from 'node:stream';
import type { DigestAlgorithm, ParsedDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';

// The blob driver seam: where the bytes of blobs and of upload sessions live. Two drivers stand
// behind it (filesystem, s3) and pass one conformance suite (test/store/blob-driver.test.ts).
// Nothing above the store reaches the bytes any other way.

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface WrittenBlob {
  digest: string;
  size: number;
}

export interface StoredBlob {
  digest: string;
  size: number;
  /** Last modification (ms since the epoch): the collector's grace for bytes nobody registered. */
  modifiedAt: number;
}

/**
 * Bytes being written: hashed as they arrive, invisible under any digest until `commit`, which
 * verifies them and makes them the blob of that digest atomically (or keeps the copy already
 * there: the content is the same). `cancel` drops them.
 */
export interface BlobWriter extends Writable {
  /** Bytes written (and hashed) so far. */
  readonly bytes: number;
  /** The digest of what was written (once the writer has finished). */
  digest(): string;
  /** Bytes already written, for readers following the write; null once they are only in the committed blob. */
  readWritten(position: number, length: number): Promise<Buffer | null>;
  /** Names this write for readers in other processes on this machine (BlobDriver.readWriting). */
  readonly id: string;
  commit(expected: ParsedDigest): Promise<WrittenBlob>;
  cancel(): Promise<void>;
}

export interface WriterOptions {
  algorithm?: DigestAlgorithm;
  /** Told after each batch reaches the writer's storage: total bytes, and the batch's bytes. */
  onWritten?: (bytes: number, batchBytes: number) => void;
}

export interface AppendOptions {
  /** The bytes the client announced for this chunk (its Content-Range), when it did. */
  length?: number;
}

/**
 * The error of a chunk whose body was not the `length` bytes its Content-Range announced: 400
 * SIZE_INVALID, the spec's code for a length that does not match the content (and Distribution's
 * answer); 416 is for a chunk out of order alone.
 */
export function wrongChunkLength(length: number, seen: number): RegistryError {
  return new RegistryError('SIZE_INVALID', { message: `Content-Range announces ${length} bytes, the body had ${seen}` });
}

/** The running hash of a session's bytes (a ThreadHash: hashed on another thread, hash-thread.ts). */
export interface SessionHash {
  /**
   * Hashes `chunks`: a copy, or with `move` their memory itself (the caller must not use them
   * again). Resolves once more may follow (undefined: right away).
   */
  update(chunks: readonly Buffer[], move?: boolean): Promise<void> | undefined;
}

/** The bytes of upload sessions so far, kept where any process serving the store can continue them. */
export interface SessionBytes {
  create(uuid: string): Promise<void>;
  /** Bytes held, or null when the session's bytes are gone. */
  size(uuid: string): Promise<number | null>;
  /**
   * Appends `body` at `offset` (the current size), hashing it into `hash`. Resolves with the new
   * size once the bytes are stored (written to the session file, or an uploaded S3 part; a file is fsynced when its upload finishes). On failure (a body of other than `length` bytes included)
   * nothing of the chunk remains.
   */
  append(uuid: string, offset: number, body: Readable, hash: SessionHash, options?: AppendOptions): Promise<number>;
  /** The session's bytes from `from` (default 0): to rebuild its hash, or catch it up with chunks another process appended. */
  read(uuid: string, from?: number): Promise<Readable>;
  /** Resolves once background work on the session's bytes (a writeback sync) is done: before a finish writes its metadata. */
  settle?(uuid: string): Promise<void>;
  /** Makes the (verified) session bytes the blob of `digest` and drops the session bytes. */
  commit(uuid: string, digest: ParsedDigest): Promise<void>;
  delete(uuid: string): Promise<void>;
  list(): AsyncIterable<{ uuid: string; modifiedAt: number }>;
  /** Drops storage-side leftovers of writes abandoned before `before` (S3 multipart uploads); returns how many. */
  abortAbandoned(before: number): Promise<number>;
}

export interface BlobDriver {
  readonly name: 'filesystem' | 's3';
  stat(digest: string): Promise<StoredBlob | null>;
  /**
   * Opens a blob (or `range` of it) for reading. Resolves once the bytes are reachable, so a
   * missing blob is BLOB_UNKNOWN here, before anything is sent.
   */
  read(digest: string, range?: ByteRange): Promise<Readable>;
  writer(options?: WriterOptions): BlobWriter;
  /** What the writer `id` (of any process on this machine) has written so far; null once it is gone. */
  readWriting(id: string, position: number, length: number): Promise<Buffer | null>;
  delete(digest: string): Promise<void>;
  /** Every stored blob, in no particular order. */
  list(): AsyncIterable<StoredBlob>;
  /** A URL the client may fetch the blob from directly (presigned), when the driver offers one. */
  redirect?(digest: string): Promise<string | null>;
  readonly sessions: SessionBytes;
  /** Start-up: create what is missing; with `recover`, drop what an interrupted run left half-written. */
  prepare(options: { recover: boolean }): Promise<void>;
  /** Whether a write can succeed now (free space, a write probe). */
  health(): Promise<{ writable: boolean; reason?: string }>;
  close(): Promise<void>;
}

export type { DigestAlgorithm, ParsedDigest };
