import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobWriter } from '../store/index.js';
import { HeldBytes } from './held-bytes.js';
import type { MemoryWindow } from './memory-window.js';

// One blob coming from the upstream: its bytes go to readers from memory as they arrive and to a
// blob writer of the store, which hashes them as it accepts them. The upstream is read as fast
// as it sends, within the memory window shared by all downloads, so readers are held to the
// upstream's pace rather than the disk's. Bytes stay in memory until they are written and every
// reader has passed them, or until the window needs the room (memory-window.ts). When the
// upstream has sent everything the digest is checked; only then may readers have the blob's last
// byte, and only once the writer has caught up is the blob committed. A blob that fails
// verification is never delivered whole.

/**
 * Upstream pieces (4-64 KiB as the socket delivers them) go to the writer in batches of about
 * this much: one writev and one 'written' each, instead of one per piece.
 */
const writeBatchBytes = 1 << 20;

export type FillState = 'running' | 'verified' | 'committed' | 'failed';

/**
 * What readers follow (fill-reader.ts): a download in this process, or (workers) one running in
 * another process, known here by its progress. Emits 'progress' whenever any of it changes.
 */
export interface Fill extends EventEmitter {
  readonly digest: string;
  /** From the upstream's Content-Length (null when it sent none), then the verified size. */
  readonly size: number | null;
  readonly state: FillState;
  readonly error: Error | null;
  /** Bytes a reader may have now: all received, but the blob's last byte only once verified. */
  readonly available: number;
  /** Bytes before this are only in storage: the writer's file, then the committed blob. */
  readonly memoryStart: number;
  /** Bytes from `from` (before `until`) out of memory without a copy, or null when not in memory. */
  slice(from: number, until: number): Buffer | null;
  /** Written bytes read back from the writer's file; null once only the committed blob has them. */
  readWritten(position: number, length: number): Promise<Buffer | null>;
  /** A reader's place, when the fill holds bytes in memory: they are kept for it while there is room. */
  cursor?(position: number): FillCursor;
}

export interface FillCursor {
  moveTo(position: number): void;
  leave(): void;
}

/**
 * Settles once the fill's blob is in the store (committed); rejects when the fill fails, its commit
 * included (a failed commit leaves a download 'verified' with an error).
 */
export function committed(fill: Fill): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (fill.state !== 'committed' && fill.state !== 'failed' && fill.error === null) return;
      fill.off('progress', check);
      if (fill.state === 'committed') resolve();
      else reject(fill.error ?? new Error(`the download of ${fill.digest} failed`));
    };
    fill.on('progress', check);
    check();
  });
}

/** Bytes a reader may have: all received, but the last byte only once the content is verified. */
export function availableBytes(fill: { state: FillState; size: number | null }, received: number): number {
  if (fill.state !== 'running') return received;
  return fill.size !== null ? Math.min(received, fill.size - 1) : Math.max(0, received - 1);
}

export interface DownloadHooks {
  /** Told how many more bytes arrived from the upstream. */
  onBytes?: (bytes: number) => void;
  /** Commits the verified blob (`place` hands the writer's bytes to the store) and links it. */
  commit: (size: number, place: () => Promise<void>) => Promise<void>;
  /** Told when the upstream's part fails: its connection, or bytes that are not the blob (`from`: the host that sent them). */
  upstreamFailed?: (error: Error, from: string) => void;
  /** Told when our side fails: the store's writer (creating, writing or flushing its file), or the commit. */
  storeFailed?: (error: Error) => void;
}

export class Download extends EventEmitter implements Fill {
  readonly digest: string;
  readonly writer: BlobWriter;
  readonly #window: MemoryWindow;
  size: number | null = null;
  /** The host the bytes come from (the upstream, the CDN it redirected to, a foreign layer's host). */
  from = '';
  /** Bytes received from the upstream so far; `written` of them are in the writer's file. */
  received = 0;
  written = 0;
  state: FillState = 'running';
  error: Error | null = null;
  /** True once run() is over, either way (its last 'progress' says so). */
  settled = false;
  /** Bytes [start, received) in memory: what is not written yet, or not yet passed by every reader. */
  #memory = new HeldBytes();
  /** Received pieces not yet handed to the writer. */
  #unwritten: { buffers: Buffer[]; bytes: number } = { buffers: [], bytes: 0 };
  /** The positions of the readers following this download. */
  readonly #readers = new Set<{ position: number }>();

  constructor(digest: string, writer: BlobWriter, window: MemoryWindow) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.writer = writer;
    this.#window = window;
  }

  get available(): number {
    return availableBytes(this, this.received);
  }

  get memoryStart(): number {
    return this.#memory.start;
  }

  /** The writer has written up to `bytes` (whole chunks): memory may let go of them. */
  wrote(bytes: number): void {
    this.written = bytes;
    this.#trim({ force: false });
    this.emit('progress');
  }

  cursor(position: number): FillCursor {
    const reader = { position };
    this.#readers.add(reader);
    return {
      moveTo: (to) => {
        reader.position = to;
        this.#trim({ force: false });
      },
      leave: () => {
        if (this.#readers.delete(reader)) this.#trim({ force: false });
      },
    };
  }

  /** Drops whole buffers that are written and passed by every reader; when the window needs room (`force`, or full), written ones. */
  #trim({ force }: { force: boolean }): void {
    let floor = this.written;
    if (!force && !this.#window.full) for (const reader of this.#readers) floor = Math.min(floor, reader.position);
    const dropped = this.#memory.dropBefore(floor);
    if (dropped > 0) this.#window.release(dropped);
  }

  slice(from: number, until: number): Buffer | null {
    return this.#memory.slice(from, until);
  }

  readWritten(position: number, length: number): Promise<Buffer | null> {
    return this.writer.readWritten(position, length);
  }

  /** Hands the pieces received since the last batch to the writer, to be written together. */
  #toWriter(): void {
    const { buffers } = this.#unwritten;
    this.#unwritten = { buffers: [], bytes: 0 };
    this.writer.cork();
    for (const buffer of buffers) this.writer.write(buffer);
    this.writer.uncork();
  }

  /**
   * Reads the upstream into memory and the writer, pausing it while the memory window is full;
   * verifies, waits for the writer, commits. Settles when the download is over, either way.
   */
  async run(body: Readable, expected: ParsedDigest, hooks: DownloadHooks): Promise<void> {
    const resume = () => body.resume();
    const leaveWindow = this.#window.reclaimable(() => this.#trim({ force: true }));
    let writerFailed = false;
    try {
      await new Promise<void>((resolve, reject) => {
        body.on('data', (chunk: Buffer) => {
          hooks.onBytes?.(chunk.length);
          this.#memory.append(chunk);
          this.received += chunk.length;
          this.#window.hold(chunk.length);
          this.#unwritten.buffers.push(chunk);
          this.#unwritten.bytes += chunk.length;
          if (this.#unwritten.bytes >= writeBatchBytes) this.#toWriter();
          this.emit('progress');
          if (this.#window.full && !this.#window.reclaim()) {
            this.#toWriter(); // what the window waits for must be on its way to the disk
            body.pause();
            this.#window.whenRoom(resume);
          }
        });
        body.once('end', () => {
          this.#toWriter();
          resolve();
        });
        body.once('error', reject);
        body.once('close', () => reject(new Error('the upstream connection closed before the blob was complete')));
        this.writer.once('error', (error) => {
          writerFailed = true;
          reject(error);
        });
      });
      const actual = this.writer.digest();
      if (actual !== this.digest) throw new RegistryError('DIGEST_INVALID', { message: `digest mismatch: the upstream sent content with digest ${actual} for ${this.digest}` });
      if (this.size !== null && this.received !== this.size) throw new Error(`size mismatch: the upstream sent ${this.received} of ${this.size} bytes`);
      this.size = this.received;
      this.state = 'verified';
      this.emit('progress');
      // end's callback is told of a write that fails now (the last batch) before 'error' is emitted.
      await new Promise<void>((resolve, reject) => {
        this.writer.end((error?: Error | null) => (error ? reject(error) : resolve()));
      }).catch((error: unknown) => {
        writerFailed = true;
        throw error;
      });
      await hooks.commit(this.size, async () => { await this.writer.commit(expected); });
      this.state = 'committed';
    } catch (error) {
      this.error = error instanceof Error ? error : new Error(String(error));
      // Before verification, a failure is the upstream's unless the writer failed; after it, ours.
      const upstreams = this.state === 'running' && !writerFailed;
      if (upstreams) hooks.upstreamFailed?.(this.error, this.from);
      else hooks.storeFailed?.(this.error);
      if (this.state === 'running') this.state = 'failed';
      body.destroy();
      // Told now, not once the writer is cleaned up: readers stop, and no pull joins it any more (downloads.ts).
      this.emit('progress');
    } finally {
      this.#window.cancel(resume);
      leaveWindow();
      this.#window.release(this.received - this.#memory.start);
      this.#memory = new HeldBytes(this.received);
      await this.writer.cancel(); // nothing is left after a commit
      this.settled = true;
      this.emit('progress');
    }
  }
}
