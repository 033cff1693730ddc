import { close, fstat, open, read } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { readChunkBytes } from './hashing.js';

// A blob file as a response body. It is a Readable like any other driver's body, and it can also
// send itself into a Node writable (an HTTP/1.1 or HTTP/2 response, plain or TLS) through a ring
// of a few reused 1 MiB buffers: each is read into with pread and handed to write(), and read into
// again only after that write's callback, when the transport has let go of it. Measured here on
// a 1 GiB file from the page cache, that is 1.7-1.9 GB/s against 0.9-1.5 GB/s for an fs read
// stream piped into the response: the cost of the pipe is the fresh 1 MiB allocation per chunk.

/** Buffers in flight per body at most: enough to keep a read and the socket busy at once. */
const ringSize = 4;

/**
 * The buffers of one driver's bodies (1 MiB unless `bufferBytes` says otherwise: bench/file-path.ts
 * measures the sizes). Idle ones are kept for the next response (at most `maxIdle`), so that it
 * does not fault in fresh memory. Every body gets one buffer; the further ones that keep a read
 * and the socket busy at once are lent only while fewer than `maxLent` are out, so that many slow
 * clients hold `maxLent` buffers in all, not four each (64 clients of a 4 MiB blob held 256 MiB).
 */
export class BufferPool {
  readonly bufferBytes: number;
  readonly #idle: Buffer[] = [];
  readonly #maxIdle: number;
  readonly #maxLent: number;
  #lent = 0;

  constructor({ maxIdle, maxLent, bufferBytes = readChunkBytes }: { maxIdle: number; maxLent: number; bufferBytes?: number }) {
    this.#maxIdle = maxIdle;
    this.#maxLent = maxLent;
    this.bufferBytes = bufferBytes;
  }

  /** Buffers out now. */
  get lent(): number {
    return this.#lent;
  }

  /** A body's first buffer: always given, so that every body makes progress. */
  take(): Buffer {
    this.#lent++;
    return this.#idle.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** A further buffer, or null while `maxLent` are out. */
  tryTake(): Buffer | null {
    return this.#lent < this.#maxLent ? this.take() : null;
  }

  give(buffer: Buffer): void {
    this.#lent--;
    if (this.#idle.length < this.#maxIdle) this.#idle.push(buffer);
  }
}

export interface FileBodyOptions {
  fd: number;
  /** First byte and the byte after the last one. */
  start: number;
  end: number;
  pool: BufferPool;
  /** The blob's path below the blob directory when the body is the whole blob (for proxy offload). */
  blobPath: string | null;
}

/** Opens `path` for a body, with its size; rejects with the open error (ENOENT for a missing blob). */
export function openFile(path: string): Promise<{ fd: number; size: number }> {
  return new Promise((resolve, reject) => open(path, 'r', (error, fd) => {
    if (error) return reject(error);
    fstat(fd, (statError, stats) => {
      if (!statError) return resolve({ fd, size: stats.size });
      close(fd, () => reject(statError));
    });
  }));
}

export class FileBody extends Readable {
  readonly blobPath: string | null;
  readonly #fd: number;
  readonly #end: number;
  readonly #pool: BufferPool;
  #position: number;
  /** A read is in flight: the descriptor is closed only after it (it could be reused meanwhile). */
  #reading = false;
  #closeWhenRead: (() => void) | null = null;

  constructor({ fd, start, end, pool, blobPath }: FileBodyOptions) {
    super({ highWaterMark: readChunkBytes });
    this.#fd = fd;
    this.#position = start;
    this.#end = end;
    this.#pool = pool;
    this.blobPath = blobPath;
  }

  override _read(): void {
    const length = Math.min(readChunkBytes, this.#end - this.#position);
    if (length <= 0) return void this.push(null);
    this.#pread(Buffer.allocUnsafe(length), length, (buffer) => {
      this.emit('sent', buffer.length);
      this.push(buffer);
    });
  }

  /**
   * Writes the body into `destination` and ends it. A read error destroys the destination (the
   * client sees a cut transfer, never a short one); a destination that closes early stops the
   * reads and releases the file. Buffers go back to the pool only from their write's callback.
   */
  sendTo(destination: Writable): void {
    const wanted = Math.min(ringSize, Math.ceil((this.#end - this.#position) / this.#pool.bufferBytes));
    const free = [this.#pool.take()];
    while (free.length < wanted) {
      const extra = this.#pool.tryTake();
      if (!extra) break;
      free.push(extra);
    }
    let stopped = false;
    const stop = (error?: Error) => {
      if (stopped) return;
      stopped = true;
      destination.off('close', onClose);
      for (const buffer of free.splice(0)) this.#pool.give(buffer);
      for (const { buffer } of ready.splice(0)) this.#pool.give(buffer);
      this.destroy();
      if (error) destination.destroy(error);
    };
    const onClose = () => stop();
    destination.once('close', onClose);
    // Read ahead, but on TLS hand the socket one buffer at a time: writes queued behind one in
    // flight reach Node's TLS layer together, and it copies them into one new buffer before
    // encrypting them (TLSWrap::DoWrite).
    const serial = encrypts(destination);
    const ready: { buffer: Buffer; bytes: Buffer }[] = [];
    let writing = false;
    const write = (buffer: Buffer, bytes: Buffer): void => {
      writing = true;
      destination.write(bytes, (error) => {
        writing = false;
        if (stopped || error) return this.#pool.give(buffer);
        free.push(buffer);
        const next = ready.shift();
        if (next) write(next.buffer, next.bytes);
        pump();
      });
    };
    const pump = (): void => {
      if (stopped || this.#reading) return;
      if (this.#position >= this.#end) {
        if (ready.length > 0) return; // the write in flight sends them first
        stop();
        return void destination.end();
      }
      const buffer = free.pop();
      if (!buffer) return;
      const length = Math.min(buffer.length, this.#end - this.#position);
      this.#pread(buffer, length, (bytes) => {
        if (stopped) return this.#pool.give(buffer);
        this.emit('sent', length);
        if (serial && writing) ready.push({ buffer, bytes });
        else write(buffer, bytes);
        pump();
      });
    };
    pump();
  }

  /** pread of `length` bytes at the current position; a short read or an error destroys the body. */
  #pread(buffer: Buffer, length: number, done: (bytes: Buffer) => void): void {
    this.#reading = true;
    read(this.#fd, buffer, 0, length, this.#position, (error, bytesRead) => {
      this.#reading = false;
      if (this.#closeWhenRead) return this.#closeWhenRead();
      if (error || bytesRead === 0) return void this.destroy(error ?? new Error('the blob file ended early'));
      this.#position += bytesRead;
      done(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const release = () => close(this.#fd, (closeError) => callback(error ?? closeError));
    if (this.#reading) this.#closeWhenRead = release;
    else release();
  }
}

/** True when `destination` writes into a TLS socket (an HTTP/1.1 response over HTTPS). */
function encrypts(destination: Writable): boolean {
  return (destination as { socket?: { encrypted?: boolean } | null }).socket?.encrypted === true;
}

/** A blob file body (the filesystem driver's), or null. */
export function sendable(body: Readable): FileBody | null {
  return body instanceof FileBody ? body : null;
}

/**
 * A body that writes itself into a Node writable, faster than a pipe (a blob file, a blob still
 * being fetched), emitting 'sent' with the bytes it hands over, however it is consumed.
 */
export interface SelfSendingBody extends Readable {
  sendTo(destination: Writable): void;
}

export function sendsItself(body: Readable): body is SelfSendingBody {
  return typeof (body as Partial<SelfSendingBody>).sendTo === 'function';
}

/** Counts the bytes of a body as they go out, whichever way it is consumed. */
export function countSent(body: Readable, onBytes: (bytes: number) => void): Readable {
  if (sendsItself(body)) body.on('sent', onBytes);
  else body.on('data', (chunk: Buffer) => onBytes(chunk.length));
  return body;
}
