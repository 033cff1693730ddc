import type { Readable } from 'node:stream';
import { parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver } from '../store/index.js';
import { Download, type DownloadHooks, type Fill } from './download.js';
import { MemoryWindow } from './memory-window.js';

// One upstream fetch per digest, however many clients ask: the first request starts a download
// (download.ts), every request, the first included, follows it (fill-reader.ts). A client that
// goes away does not affect the download.

export interface UpstreamBlob {
  /** From the upstream's Content-Length; null when it sent none. */
  size: number | null;
  body: Readable;
}

export interface DownloadSource extends DownloadHooks {
  /** Starts the upstream request (called only when no download of the digest is running). */
  fetch: () => Promise<UpstreamBlob>;
}

export interface JoinResult {
  fill: Fill;
  /** True when this request started the download (MISS), false when it joined one (JOIN). */
  started: boolean;
}

export interface BlobDownloadsOptions {
  /** Bytes all downloads together may hold ahead of their writers (downloads.memory). */
  memory: number;
}

/** The downloads in progress, by digest (state in this instance, not in the module). */
export class BlobDownloads {
  readonly #store: BlobDriver;
  readonly #window: MemoryWindow;
  readonly #running = new Map<string, Promise<Download>>();

  constructor(store: BlobDriver, options: BlobDownloadsOptions) {
    this.#store = store;
    this.#window = new MemoryWindow(options.memory);
  }

  /** Bytes held in memory by the running downloads. */
  get memoryHeld(): number {
    return this.#window.held;
  }

  /** Follows the running download of `digest`; null when none runs. */
  follow(digest: string): Promise<JoinResult> | null {
    const running = this.#running.get(digest);
    return running ? running.then((fill) => ({ fill, started: false })) : null;
  }

  /** Joins the download of `digest`, or starts one. */
  async join(digest: string, source: DownloadSource): Promise<JoinResult> {
    const following = this.follow(digest);
    if (following) return following;
    const starting = this.#start(digest, source);
    this.#running.set(digest, starting);
    starting.catch(() => this.#running.delete(digest));
    return { fill: await starting, started: true };
  }

  async #start(digest: string, source: DownloadSource): Promise<Download> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('DIGEST_INVALID', { detail: { digest } });
    let download: Download | null = null;
    const writer = this.#store.writer({ algorithm: parsed.algorithm, onWritten: (bytes) => download!.wrote(bytes) });
    download = new Download(digest, writer, this.#window);
    // The writer's storage is created while the upstream is asked (one less wait before the
    // first byte), and exists before the first reader reads it back.
    const created = new Promise<void>((resolve, reject) => {
      writer.once('ready', resolve);
      writer.once('error', reject);
    });
    const [answer, file] = await Promise.allSettled([source.fetch(), created]);
    if (answer.status === 'rejected' || file.status === 'rejected') {
      if (answer.status === 'fulfilled') answer.value.body.destroy();
      await writer.cancel();
      throw answer.status === 'rejected' ? answer.reason : (file as PromiseRejectedResult).reason;
    }
    download.size = answer.value.size;
    void download.run(answer.value.body, parsed, source).finally(() => this.#running.delete(digest));
    return download;
  }
}
