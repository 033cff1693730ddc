import { EventEmitter } from 'node:events';
import { close, open, read } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { newHasher, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobStore, ByteRange } from '../store/blobs.js';
import { removeQuietly } from '../store/files.js';
import { HashingFileWriter } from '../store/hashing.js';

// One upstream fetch per digest, however many clients ask. The first request starts a download
// that writes to a temp file while hashing; every request, the first included, follows it: bytes
// go out to readers as they arrive from the upstream, from memory, while they are written; a
// reader that falls behind what is still in memory reads the file back. The digest is checked at
// the end and only then is the file committed to the blob store. Until then the last byte is held
// back from every reader, so a blob that fails verification is never delivered whole: readers are
// cut off instead. A reader that goes away does not affect the download.

export interface UpstreamBlob {
  /** From the upstream's Content-Length; null when it sent none. */
  size: number | null;
  body: Readable;
}

type State = 'running' | 'verified' | 'committed' | 'failed';

const readChunkBytes = 1 << 20;

class Download extends EventEmitter {
  readonly digest: string;
  readonly tempPath: string;
  size: number | null = null;
  /** Bytes received from the upstream so far; `written` of them are in the temp file. */
  received = 0;
  written = 0;
  state: State = 'running';
  error: Error | null = null;
  committedPath: string | null = null;
  /**
   * Bytes [start, received) in memory: what the writer still holds and the batch it wrote last
   * (for readers just behind). The writer's backpressure bounds it (its buffer plus one batch).
   */
  memory: { start: number; buffers: Buffer[] } = { start: 0, buffers: [] };

  constructor(digest: string, tempPath: string) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.tempPath = tempPath;
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

  /** A descriptor of the file, the temp file or, once renamed on commit, the committed one. */
  #open(): Promise<number> {
    return new Promise((resolve, reject) => {
      const opened = (error: NodeJS.ErrnoException | null, descriptor: number) => (error ? reject(error) : resolve(descriptor));
      if (this.state === 'committed') return open(this.committedPath!, 'r', opened);
      open(this.tempPath, 'r', (error, descriptor) => {
        if (error?.code === 'ENOENT' && this.committedPath) return open(this.committedPath, 'r', opened);
        opened(error, descriptor);
      });
    });
  }

  /** A stream of `range` (inclusive) that follows the file as it grows. */
  reader(range: ByteRange): Readable {
    // The file is opened at once (the descriptor stays valid through the rename on commit and a
    // later eviction), but bytes still in memory go out without waiting for the open.
    const download = this;
    const descriptor = this.#open();
    descriptor.catch(() => undefined); // reported by the first read from disk, if one is needed
    let position = range.start;
    const stream = new Readable({
      highWaterMark: readChunkBytes,
      read() {
        const pump = (): void => {
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
          // From the file only what is written: memory holds everything from memory.start on.
          const length = Math.min(readChunkBytes, Math.min(limit, download.memory.start) - position);
          descriptor.then((fd) => read(fd, Buffer.allocUnsafe(length), 0, length, position, (error, bytesRead, buffer) => {
            if (error) return void this.destroy(error);
            position += bytesRead;
            this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
          }), (error: Error) => this.destroy(error));
        };
        pump();
      },
      destroy(error, callback) {
        descriptor.then((fd) => close(fd, () => callback(error)), () => callback(error));
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
  /** Runs once the blob is verified and in the store (to record it in the metadata). */
  onCommitted: (size: number) => void;
}

export interface JoinResult {
  download: Download;
  /** True when this request started the download (MISS), false when it joined one (JOIN). */
  started: boolean;
}

export type { Download };

/** The downloads in progress, by digest (state in this instance, not in the module). */
export class BlobDownloads {
  readonly #store: BlobStore;
  readonly #running = new Map<string, Promise<Download>>();

  constructor(store: BlobStore) {
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

  async #start(digest: string, { fetch, onBytes, onCommitted }: DownloadSource): Promise<Download> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('DIGEST_INVALID', { detail: { digest } });
    const download = new Download(digest, this.#store.tempPath());
    const hash = newHasher(parsed.algorithm);
    const writer = new HashingFileWriter(download.tempPath, { hash, onWritten: (bytes, batchBytes) => download.wrote(bytes, batchBytes) });
    // The temp file is created while the upstream is asked (one less wait before the first
    // byte), and exists before the first reader opens it.
    const created = new Promise<void>((resolve, reject) => {
      writer.once('ready', resolve);
      writer.once('error', reject);
    });
    const [answer, file] = await Promise.allSettled([fetch(), created]);
    if (answer.status === 'rejected' || file.status === 'rejected') {
      if (answer.status === 'fulfilled') answer.value.body.destroy();
      writer.destroy();
      await removeQuietly(download.tempPath);
      throw answer.status === 'rejected' ? answer.reason : (file as PromiseRejectedResult).reason;
    }
    const upstream = answer.value;
    download.size = upstream.size;
    // Same tick as the pipeline below: this listener sees every chunk the writer gets.
    upstream.body.on('data', (chunk: Buffer) => {
      onBytes?.(chunk.length);
      download.receive(chunk);
    });
    const finish = async () => {
      try {
        await pipeline(upstream.body, writer);
        const actual = `${parsed.algorithm}:${hash.digest('hex')}`;
        if (actual !== digest) throw new RegistryError('DIGEST_INVALID', { message: `the upstream sent content with digest ${actual} for ${digest}` });
        if (download.size !== null && download.received !== download.size) throw new Error(`the upstream sent ${download.received} of ${download.size} bytes`);
        download.size = download.written;
        download.committedPath = this.#store.pathOf(digest);
        download.state = 'verified';
        download.emit('progress');
        await this.#store.commit(download.tempPath, parsed);
        download.state = 'committed';
        onCommitted(download.written);
      } catch (error) {
        download.error = error instanceof Error ? error : new Error(String(error));
        // Readers of verified bytes keep them; only the cache entry is lost.
        if (download.state === 'running') download.state = 'failed';
      } finally {
        download.memory = { start: download.received, buffers: [] };
        await removeQuietly(download.tempPath); // gone already when committed by rename

        this.#running.delete(digest);
        download.emit('progress');
      }
    };
    void finish();
    return download;
  }
}
