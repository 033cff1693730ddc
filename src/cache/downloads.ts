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
// that writes to a temp file while hashing; every request, the first included, streams from that
// growing file as the bytes land (a reader that has caught up takes the batch just written from
// memory instead of reading it back). The digest is checked at the end and only then is the file
// committed to the blob store. Until then the last byte is held back from every reader, so a
// blob that fails verification is never delivered whole: readers are cut off instead. A reader
// that goes away does not affect the download.

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
  written = 0;
  state: State = 'running';
  error: Error | null = null;
  committedPath: string | null = null;
  /** The last batch written, for readers that have caught up: it starts at byte `start`. */
  batch: { start: number; buffers: Buffer[] } | null = null;

  constructor(digest: string, tempPath: string) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.tempPath = tempPath;
  }

  /** Bytes a reader may have now. */
  get available(): number {
    return this.state === 'running' ? Math.max(0, this.written - 1) : this.written;
  }

  get finished(): boolean {
    return this.state === 'verified' || this.state === 'committed';
  }

  /** Bytes [from, until) when they are all in the last batch written, else null. */
  slice(from: number, until: number): Buffer | null {
    const batch = this.batch;
    if (!batch || from < batch.start) return null;
    const parts: Buffer[] = [];
    // The batch ends at `written`, and `until` never exceeds what has been written.
    let offset = batch.start;
    for (const buffer of batch.buffers) {
      const end = offset + buffer.length;
      if (end > from && offset < until) parts.push(buffer.subarray(Math.max(0, from - offset), Math.min(buffer.length, until - offset)));
      offset = end;
    }
    if (parts.length === 0) return null; // `from` is past this batch
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** A stream of `range` (inclusive) that follows the file as it grows. */
  reader(range: ByteRange): Readable {
    // Open the file now: an open descriptor stays valid when the temp file is renamed on commit.
    // A reader that starts just as the rename happens finds the committed file instead.
    const download = this;
    let fd: number | null = null;
    let position = range.start;
    const stream = new Readable({
      highWaterMark: readChunkBytes,
      construct(callback) {
        const opened = (error: NodeJS.ErrnoException | null, descriptor: number) => {
          fd = error ? null : descriptor;
          callback(error);
        };
        if (download.state === 'committed') return open(download.committedPath!, 'r', opened);
        open(download.tempPath, 'r', (error, descriptor) => {
          if (error?.code === 'ENOENT' && download.committedPath) return open(download.committedPath, 'r', opened);
          opened(error, descriptor);
        });
      },
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
          const length = Math.min(readChunkBytes, limit - position);
          read(fd!, Buffer.allocUnsafe(length), 0, length, position, (error, bytesRead, buffer) => {
            if (error) return void this.destroy(error);
            position += bytesRead;
            this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
          });
        };
        pump();
      },
      destroy(error, callback) {
        if (fd === null) return callback(error);
        close(fd, () => callback(error));
        fd = null;
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
    const writer = new HashingFileWriter(download.tempPath, {
      hash,
      onWritten: (bytes, batch) => {
        onBytes?.(bytes - download.written);
        download.batch = { start: download.written, buffers: batch };
        download.written = bytes;
        download.emit('progress');
      },
    });
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
    const finish = async () => {
      try {
        await pipeline(upstream.body, writer);
        const actual = `${parsed.algorithm}:${hash.digest('hex')}`;
        if (actual !== digest) throw new RegistryError('DIGEST_INVALID', { message: `the upstream sent content with digest ${actual} for ${digest}` });
        if (download.size !== null && download.written !== download.size) throw new Error(`the upstream sent ${download.written} of ${download.size} bytes`);
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
        download.batch = null;
        await removeQuietly(download.tempPath); // gone already when committed by rename

        this.#running.delete(digest);
        download.emit('progress');
      }
    };
    void finish();
    return download;
  }
}
