import type { Hash } from 'node:crypto';
import { close, open, writev } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Reads of 1 MiB instead of Node's 64 KiB default: 3-4x the throughput on large blobs here. */
export const readChunkBytes = 1024 * 1024;

/** Bytes buffered while a write is in flight; they go to disk together in one writev. */
const writeBatchBytes = 8 << 20;

/**
 * A file sink that hashes what it writes. Request bodies arrive in 64 KiB chunks; fs.WriteStream
 * writes them one thread-pool round trip at a time, while this gathers whatever arrived during
 * the previous write into a single writev: measured here, 2-3x the upload throughput.
 */
export class HashingFileWriter extends Writable {
  readonly #path: string;
  readonly #flags: string;
  readonly #hash: Hash;
  #position: number;
  #fd: number | null = null;
  #bytes = 0;

  readonly #onWritten: ((bytes: number, batchBytes: number) => void) | undefined;

  constructor(path: string, options: { hash: Hash; flags?: 'w' | 'r+'; start?: number; onWritten?: (bytes: number, batchBytes: number) => void }) {
    super({ highWaterMark: writeBatchBytes });
    this.#path = path;
    this.#onWritten = options.onWritten;
    this.#flags = options.flags ?? 'w';
    this.#hash = options.hash;
    this.#position = options.start ?? 0;
  }

  /** Bytes written (and hashed) so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Opens the file; emits 'ready' once it exists (readers may follow it from then on). */
  override _construct(callback: (error?: Error | null) => void): void {
    open(this.#path, this.#flags, 0o644, (error, fd) => {
      this.#fd = fd;
      callback(error);
      if (!error) this.emit('ready');
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const buffers = chunks.map(({ chunk }) => chunk);
    let length = 0;
    for (const buffer of buffers) {
      this.#hash.update(buffer);
      length += buffer.length;
    }
    writeAll(this.#fd!, buffers, this.#position, (error, written) => {
      this.#position += written;
      this.#bytes += written;
      if (!error) this.#onWritten?.(this.#bytes, length);
      callback(error);
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

/** Hashes a stream to its end; resolves with its size. */
export async function hashStream(source: Readable, hash: Hash): Promise<number> {
  let size = 0;
  await pipeline(source, async function* (chunks) {
    for await (const chunk of chunks as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
  });
  return size;
}
