import { Readable, type Writable } from 'node:stream';
import { sendsItself } from '../store/blobs/file-body.js';
import type { BlobDriver, ByteRange } from '../store/index.js';
import type { Fill, FillCursor } from './download.js';

// A client's stream of a blob that is still being fetched: it follows the fill as it grows. Bytes
// come from memory when the fill still holds them, else from the writer's file, and once the blob
// is committed (the file handed to the store), from the store. Sent into an HTTP response
// (sendTo), what memory holds is written in batches, one writev each: the upstream delivers the
// blob in pieces of 4-64 KiB, and a write per piece costs a syscall per piece.

const readChunkBytes = 1 << 20;
/** Bytes from memory handed to the destination in one corked write. */
const batchBytes = 4 << 20;

/** Sends the status and headers of an HTTP response (ServerResponse, Http2ServerResponse) before any body. */
function flushHeaders(destination: Writable & { flushHeaders?: () => void }): void {
  destination.flushHeaders?.();
}

/** What the fill offers a reader at its position right now. */
type Step =
  | { kind: 'memory'; buffers: Buffer[]; bytes: number }
  | { kind: 'file'; length: number }
  | { kind: 'wait' }
  | { kind: 'end' }
  | { kind: 'failed'; error: Error };

/** A stream of `range` (inclusive) of the blob `fill` is fetching. */
export function fillReader(fill: Fill, store: BlobDriver, range: ByteRange): FillBody {
  return new FillBody(fill, store, range);
}

export class FillBody extends Readable {
  readonly #fill: Fill;
  readonly #store: BlobDriver;
  readonly #range: ByteRange;
  readonly #cursor: FillCursor | null;
  #position: number;
  #committed: Readable | null = null;

  constructor(fill: Fill, store: BlobDriver, range: ByteRange) {
    super({ highWaterMark: readChunkBytes });
    this.#fill = fill;
    this.#store = store;
    this.#range = range;
    this.#position = range.start;
    this.#cursor = fill.cursor?.(range.start) ?? null;
  }

  #step(maxBytes: number): Step {
    const fill = this.#fill;
    if (this.#position > this.#range.end) return { kind: 'end' };
    if (fill.state === 'failed') return { kind: 'failed', error: fill.error ?? new Error('download failed') };
    const limit = Math.min(this.#range.end + 1, fill.available);
    if (this.#position >= limit) {
      // Verified, the blob ends at its size (a length the upstream may not have announced). A
      // fill followed from another process (workers) is only readable up to what is written.
      const finished = fill.state === 'verified' || fill.state === 'committed';
      return finished && this.#position >= fill.size! ? { kind: 'end' } : { kind: 'wait' };
    }
    const buffers: Buffer[] = [];
    let at = this.#position;
    while (at < limit && at - this.#position < maxBytes) {
      const slice = fill.slice(at, limit);
      if (!slice) break;
      buffers.push(slice);
      at += slice.length;
    }
    if (buffers.length > 0) return { kind: 'memory', buffers, bytes: at - this.#position };
    // From storage only what is written: memory holds everything from memoryStart on.
    const length = Math.min(readChunkBytes, Math.min(limit, fill.memoryStart) - this.#position);
    return length > 0 ? { kind: 'file', length } : { kind: 'wait' };
  }

  #advance(bytes: number): void {
    this.#position += bytes;
    this.#cursor?.moveTo(this.#position);
    this.emit('sent', bytes);
  }

  /** Written bytes from the writer's file, or (null) the rest of the range from the committed blob. */
  async #fromStorage(length: number): Promise<Buffer | Readable> {
    const bytes = await this.#fill.readWritten(this.#position, length);
    if (bytes) return bytes;
    this.#cursor?.leave();
    const end = Math.min(this.#range.end, (this.#fill.size ?? Infinity) - 1);
    this.#committed = await this.#store.read(this.#fill.digest, { start: this.#position, end });
    return this.#committed;
  }

  override _read(): void {
    if (this.#committed) return void this.#committed.resume();
    const step = this.#step(readChunkBytes);
    switch (step.kind) {
      case 'end': return void this.push(null);
      case 'failed': return void this.destroy(step.error);
      case 'wait': return void this.#fill.once('progress', () => this._read());
      case 'memory':
        this.#advance(step.bytes);
        for (const buffer of step.buffers) this.push(buffer);
        return;
      case 'file':
        this.#fromStorage(step.length).then((got) => {
          if (Buffer.isBuffer(got)) {
            this.#advance(got.length);
            return void this.push(got);
          }
          got.on('data', (chunk: Buffer) => {
            this.emit('sent', chunk.length);
            if (!this.push(chunk)) got.pause();
          });
          got.once('end', () => this.push(null));
          got.once('error', (error) => this.destroy(error));
        }).catch((error: Error) => this.destroy(error));
    }
  }

  /**
   * Writes the range into `destination` and ends it: what memory holds in corked batches, waiting
   * for 'drain' when the destination is full. A failed download destroys the destination (the
   * client sees a cut transfer, never a short one); a destination that closes early stops it.
   */
  sendTo(destination: Writable): void {
    let stopped = false;
    const stop = (error?: Error) => {
      if (stopped) return;
      stopped = true;
      destination.off('close', onClose);
      this.destroy(error);
      if (error) destination.destroy(error);
    };
    const onClose = () => stop();
    destination.once('close', onClose);
    // Waiting for more: the pieces that arrive in one turn of the event loop go out together.
    const later = () => setImmediate(pump);
    // When no byte can go with them yet, the status and headers (the size and digest are known)
    // go at once: the client's first byte does not wait for the upstream's.
    let headPending = true;
    const pump = (): void => {
      while (!stopped) {
        const step = this.#step(batchBytes);
        if (step.kind === 'end') {
          stop();
          return void destination.end();
        }
        if (step.kind === 'failed') return stop(step.error);
        if (step.kind === 'wait') {
          if (headPending) flushHeaders(destination);
          headPending = false;
          return void this.#fill.once('progress', later);
        }
        headPending = false;
        if (step.kind === 'file') return void this.#sendStored(step.length, destination, pump, stop);
        destination.cork();
        for (const buffer of step.buffers) destination.write(buffer);
        destination.uncork();
        this.#advance(step.bytes);
        if (destination.writableNeedDrain) return void destination.once('drain', pump);
      }
    };
    pump();
  }

  /** Sends bytes from storage: a batch read back from the file, or the rest from the committed blob. */
  #sendStored(length: number, destination: Writable, next: () => void, stop: (error?: Error) => void): void {
    this.#fromStorage(length).then((got) => {
      if (this.destroyed) return void (Buffer.isBuffer(got) ? null : got.destroy());
      if (Buffer.isBuffer(got)) {
        this.#advance(got.length);
        return void (destination.write(got) ? next() : destination.once('drain', next));
      }
      got.on('sent', (bytes: number) => this.emit('sent', bytes));
      got.once('error', (error) => stop(error));
      if (sendsItself(got)) return got.sendTo(destination);
      got.on('data', (chunk: Buffer) => this.emit('sent', chunk.length));
      got.pipe(destination);
    }).catch((error: Error) => stop(error));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#cursor?.leave();
    this.#committed?.destroy();
    callback(error);
  }
}
