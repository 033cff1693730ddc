import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest, type ParsedDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver, BlobWriter, ByteRange } from '../store/index.js';

// One upstream fetch per digest, however many clients ask. The first request starts a download
// that goes to a blob writer of the store (hashed as it is written); every request, the first
// included, follows it: bytes go out to readers as they arrive from the upstream, from memory,
// while they are written; a reader that falls behind what is still in memory reads the written
// bytes back from the writer, and from the committed blob once the writer has handed them over.
// The digest is checked at the end and only then is the blob committed to the store. Until then
// the last byte is held back from every reader, so a blob that fails verification is never
// delivered whole: readers are cut off instead. A reader that goes away does not affect the
// download.

export interface UpstreamBlob {
  /** From the upstream's Content-Length; null when it sent none. */
  size: number | null;
  body: Readable;
}

type State = 'running' | 'verified' | 'committed' | 'failed';

const readChunkBytes = 1 << 20;

class Download extends EventEmitter {
  readonly digest: string;
  readonly writer: BlobWriter;
  readonly #store: BlobDriver;
  size: number | null = null;
  /** Bytes received from the upstream so far; `written` of them are in the temp file. */
  received = 0;
  written = 0;
  state: State = 'running';
  error: Error | null = null;
  /**
   * Bytes [start, received) in memory: what the writer still holds and the batch it wrote last
   * (for readers just behind). The writer's backpressure bounds it (its buffer plus one batch).
   */
  memory: { start: number; buffers: Buffer[] } = { start: 0, buffers: [] };

  constructor(digest: string, writer: BlobWriter, store: BlobDriver) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.writer = writer;
    this.#store = store;
  }

  /** Bytes a reader may have now: all received, but the blob's last byte only once verified. */
  get available(): number {
    if (this.state !== 'running') return this.received;
    return this.size !== null ? Math.min(this.received, this.size - 1) : Math.max(0, this.received - 1);
  }

  get finished(): boolean {
    return this.state === 'verified' || this.state === 'committed';
  }

  /** A chunk arrived from the upstream: readers may have it at once. */
  receive(chunk: Buffer): void {
    this.memory.buffers.push(chunk);
    this.received += chunk.length;
    this.emit('progress');
  }

  /** The writer has written up to `bytes`, the last `batchBytes` of them in its latest batch. */
  wrote(bytes: number, batchBytes: number): void {
    this.written = bytes;
    const keepFrom = bytes - batchBytes;
    const memory = this.memory;
    while (memory.buffers.length > 0 && memory.start + memory.buffers[0]!.length <= keepFrom) memory.start += memory.buffers.shift()!.length;
  }

  /**
   * Bytes from `from` (before `until`) out of the memory buffer that holds `from`, without a copy;
   * null when `from` is no longer in memory (read the file).
   */
  slice(from: number, until: number): Buffer | null {
    const { start, buffers } = this.memory;
    if (from < start) return null;
    let offset = start;
    for (const buffer of buffers) {
      const end = offset + buffer.length;
      if (from < end) return buffer.subarray(from - offset, Math.min(buffer.length, until - offset));
      offset = end;
    }
    return null;
  }

  /** A stream of `range` (inclusive) that follows the download as it grows. */
  reader(range: ByteRange): Readable {
    const download = this;
    let position = range.start;
    // Once the writer has handed its bytes to the store, the rest comes from the committed blob.
    let committed: Readable | null = null;
    const stream = new Readable({
      highWaterMark: readChunkBytes,
      read() {
        const pump = (): void => {
          if (committed) return void committed.resume();
          if (position > range.end) return void this.push(null);
          if (download.state === 'failed') return void this.destroy(download.error ?? new Error('download failed'));
          const limit = Math.min(range.end + 1, download.available);
          if (position >= limit) {
            // Verified: the blob ends here (a length the upstream did not announce).
            if (download.finished) return void this.push(null);
            return void download.once('progress', pump);
          }
          const fromMemory = download.slice(position, limit);
          if (fromMemory) {
            position += fromMemory.length;
            return void this.push(fromMemory);
          }
          // From storage only what is written: memory holds everything from memory.start on.
          const length = Math.min(readChunkBytes, Math.min(limit, download.memory.start) - position);
          download.writer.readWritten(position, length).then((bytes: Buffer | null) => {
            if (bytes) {
              position += bytes.length;
              return void this.push(bytes);
            }
            return download.#store.read(download.digest, { start: position, end: Math.min(range.end, (download.size ?? Infinity) - 1) }).then((rest) => {
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
    return stream;
  }
}

export interface DownloadSource {
  /** Starts the upstream request (called only when no download of the digest is running). */
  fetch: () => Promise<UpstreamBlob>;
  /** Told how many more bytes arrived from the upstream. */
  onBytes?: (bytes: number) => void;
  /** Commits the verified blob (`place` hands the writer's bytes to the store) and links it. */
  commit: (size: number, place: () => Promise<void>) => Promise<void>;
}

export interface JoinResult {
  download: Download;
  /** True when this request started the download (MISS), false when it joined one (JOIN). */
  started: boolean;
}

export type { Download };

/** The downloads in progress, by digest (state in this instance, not in the module). */
export class BlobDownloads {
  readonly #store: BlobDriver;
  readonly #running = new Map<string, Promise<Download>>();

  constructor(store: BlobDriver) {
    this.#store = store;
  }

  /** Joins the download of `digest`, or starts one. */
  async join(digest: string, source: DownloadSource): Promise<JoinResult> {
    const running = this.#running.get(digest);
    if (running) return { download: await running, started: false };
    const starting = this.#start(digest, source);
    this.#running.set(digest, starting);
    starting.catch(() => this.#running.delete(digest));
    return { download: await starting, started: true };
  }

  async #start(digest: string, { fetch, onBytes, commit }: DownloadSource): Promise<Download> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('DIGEST_INVALID', { detail: { digest } });
    let download: Download | null = null;
    const writer = this.#store.writer({ algorithm: parsed.algorithm, onWritten: (bytes, batchBytes) => download!.wrote(bytes, batchBytes) });
    download = new Download(digest, writer, this.#store);
    // The writer's storage is created while the upstream is asked (one less wait before the
    // first byte), and exists before the first reader reads it back.
    const created = new Promise<void>((resolve, reject) => {
      writer.once('ready', resolve);
      writer.once('error', reject);
    });
    const [answer, file] = await Promise.allSettled([fetch(), created]);
    if (answer.status === 'rejected' || file.status === 'rejected') {
      if (answer.status === 'fulfilled') answer.value.body.destroy();
      await writer.cancel();
      throw answer.status === 'rejected' ? answer.reason : (file as PromiseRejectedResult).reason;
    }
    const upstream = answer.value;
    download.size = upstream.size;
    // Same tick as the pipeline below: this listener sees every chunk the writer gets.
    upstream.body.on('data', (chunk: Buffer) => {
      onBytes?.(chunk.length);
      download.receive(chunk);
    });
    const finish = async (started: Download) => {
      try {
        await pipeline(upstream.body, writer);
        const actual = writer.digest();
        if (actual !== digest) throw new RegistryError('DIGEST_INVALID', { message: `the upstream sent content with digest ${actual} for ${digest}` });
        if (started.size !== null && started.received !== started.size) throw new Error(`the upstream sent ${started.received} of ${started.size} bytes`);
        started.size = started.written;
        started.state = 'verified';
        started.emit('progress');
        await commit(started.written, async () => { await writer.commit(parsed as ParsedDigest); });
        started.state = 'committed';
      } catch (error) {
        started.error = error instanceof Error ? error : new Error(String(error));
        if (started.state === 'running') started.state = 'failed';
      } finally {
        started.memory = { start: started.received, buffers: [] };
        await writer.cancel(); // nothing left after a commit
        this.#running.delete(digest);
        started.emit('progress');
      }
    };
    void finish(download);
    return download;
  }
}
