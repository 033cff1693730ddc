import type { Hash } from 'node:crypto';
import { close, open, writev } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Reads of 1 MiB instead of Node's 64 KiB default: 3-4x the throughput on large blobs here. */
export const readChunkBytes = 1024 * 1024;

type WriteCallback = (error?: Error | null) => void;
type HandTo = (written: Buffer[]) => Promise<void> | undefined;

/** Bytes buffered while a write is in flight; they go to disk together in writevs of at most this much. */
const writeBatchBytes = 8 << 20;

/**
 * The batch of an upload session's chunk writer: a PATCH is answered once its last write has
 * landed, and with 8 MiB batches that wait was 6 ms (median; 24 ms p90) after the chunk's last
 * byte, against 0.8 (4.7) with 2 MiB, which also cost the server less system time.
 */
export const sessionWriteBatchBytes = 2 << 20;

/**
 * A file sink that hashes what it writes: into `hash` as it accepts it, or by handing each batch
 * to `handTo` once written (an upload session's hash, on another thread: it answers a promise
 * while that thread is too far behind). Request bodies arrive in 64 KiB chunks; fs.WriteStream
 * writes them one thread-pool round trip at a time, while this gathers whatever arrived during
 * the previous write into a single writev: measured here, 2-3x the upload throughput.
 */
export class HashingFileWriter extends Writable {
  readonly #path: string;
  readonly #flags: string;
  readonly #hash: Hash | undefined;
  readonly #handTo: HandTo | undefined;
  readonly #batchBytes: number;
  #position: number;
  #fd: number | null = null;
  #bytes = 0;

  readonly #onWritten: ((bytes: number, batchBytes: number) => void) | undefined;

  constructor(path: string, options: { hash?: Hash; handTo?: HandTo; flags?: 'w' | 'r+'; start?: number; batchBytes?: number; onWritten?: (bytes: number, batchBytes: number) => void }) {
    const batchBytes = options.batchBytes ?? writeBatchBytes;
    super({ highWaterMark: batchBytes });
    this.#batchBytes = batchBytes;
    this.#path = path;
    this.#onWritten = options.onWritten;
    this.#flags = options.flags ?? 'w';
    this.#hash = options.hash;
    this.#handTo = options.handTo;
    this.#position = options.start ?? 0;
  }

  /** Bytes written to the file so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Opens the file; emits 'ready' once it exists (readers may follow it from then on). */
  override _construct(callback: (error?: Error | null) => void): void {
    open(this.#path, this.#flags, 0o644, (error, fd) => {
      // A failed open has no descriptor to close: _destroy must not close undefined (and lose the cause).
      if (!error) this.#fd = fd;
      callback(error);
      if (!error) this.emit('ready');
    });
  }

  /**
   * Hashed as it is accepted, not as it reaches the disk: once the last chunk is handed over the
   * digest is known, while the disk may still be catching up (a cold pull releases its last byte
   * on verification, not on the writer's pace). A chunk accepted is written, or the writer fails.
   * (Writers are ended without a chunk: end(chunk) would bypass this.)
   */
  override write(chunk: Buffer, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    this.#hash?.update(chunk);
    return typeof encoding === 'function' ? super.write(chunk, encoding) : super.write(chunk, encoding as BufferEncoding, callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  /** Writes what is buffered in writev batches of at most the batch size, each reported once written. */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const batch: Buffer[] = [];
    let length = 0;
    while (chunks.length > 0 && (length === 0 || length + chunks[0]!.chunk.length <= this.#batchBytes)) {
      const { chunk } = chunks.shift()!;
      batch.push(chunk);
      length += chunk.length;
    }
    writeAll(this.#fd!, batch, this.#position, (error, written) => {
      this.#position += written;
      this.#bytes += written;
      if (error) return callback(error);
      this.#onWritten?.(this.#bytes, length);
      const next = () => (chunks.length > 0 ? this._writev(chunks, callback) : callback());
      const handedOver = this.#handTo?.(batch);
      if (handedOver) handedOver.then(next, callback);
      else next();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#fd === null) return callback(error);
    close(this.#fd, (closeError) => callback(error ?? closeError));
    this.#fd = null;
  }
}

/**
 * writev until every byte is written: a short write (a disk filling up) is followed by another
 * for the rest, which then fails with the real cause (ENOSPC).
 */
function writeAll(fd: number, buffers: Buffer[], position: number, done: (error: NodeJS.ErrnoException | null, written: number) => void, before = 0): void {
  writev(fd, buffers, position, (error, written) => {
    if (error) return done(error, before);
    const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (written === total) return done(null, before + written);
    if (written === 0) return done(Object.assign(new Error('the file system accepted no bytes'), { code: 'EIO' }), before);
    let skip = written;
    const rest: Buffer[] = [];
    for (const buffer of buffers) {
      if (skip >= buffer.length) skip -= buffer.length;
      else {
        rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
        skip = 0;
      }
    }
    writeAll(fd, rest, position + written, done, before + written);
  });
}

/** Hashes a stream to its end through `update` (awaited when it answers a promise); resolves with its size. */
export async function hashStream(source: Readable, update: (chunk: Buffer) => unknown): Promise<number> {
  let size = 0;
  await pipeline(source, async function* (chunks) {
    for await (const chunk of chunks as AsyncIterable<Buffer>) {
      await update(chunk);
      size += chunk.length;
    }
  });
  return size;
}
