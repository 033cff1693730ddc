import type { Readable } from 'node:stream';
import { parseDigest, type ParsedDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobDriver } from '../store/index.js';
import { Download, type DownloadHooks, type Fill } from './download.js';
import { FollowedFill, type FillCoordinator, type FillProgress, type FollowedClaim } from './followed-fill.js';
import { MemoryWindow } from './memory-window.js';

// One upstream fetch per digest, however many clients ask: the first request starts a download
// (download.ts), every request, the first included, follows it (fill-reader.ts). A client that
// goes away does not affect the download.

export interface UpstreamBlob {
  /** From the upstream's Content-Length; null when it sent none. */
  size: number | null;
  body: Readable;
  /** The host that sent it (for the log: never a URL, which may be signed). */
  from: string;
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
  /** Who fetches a digest when other processes serve the same store (workers); none: this process alone. */
  coordinator?: FillCoordinator;
}

/** The downloads in progress, by digest (state in this instance, not in the module). */
export class BlobDownloads {
  readonly #store: BlobDriver;
  readonly #window: MemoryWindow;
  readonly #coordinator: FillCoordinator | null;
  /** Fills this process follows, by digest: its own downloads and, with workers, others' it follows. */
  readonly #running = new Map<string, Promise<{ fill: Fill; lead: boolean }>>();
  /** This process's downloads until each is over (committed, or cleaned up). */
  readonly #runs = new Set<Promise<void>>();

  constructor(store: BlobDriver, options: BlobDownloadsOptions) {
    this.#store = store;
    this.#window = new MemoryWindow(options.memory);
    this.#coordinator = options.coordinator ?? null;
  }

  /** Bytes held in memory by the running downloads. */
  get memoryHeld(): number {
    return this.#window.held;
  }

  /** Bytes they may hold together (downloads.memory, or a worker's share of it). */
  get memoryLimit(): number {
    return this.#window.limit;
  }

  /** Settles when every download running now is over: a server closing its store waits for them. */
  async idle(): Promise<void> {
    await Promise.all([...this.#runs]);
  }

  /**
   * Follows the running download of `digest` (with workers, in whichever process runs it); null
   * when none runs, or when it has committed and only its cleanup runs: the cache has the blob.
   */
  async follow(digest: string): Promise<JoinResult | null> {
    const running = this.#running.get(digest);
    if (running) {
      const { fill } = await running;
      return fill.state === 'committed' ? null : { fill, started: false };
    }
    const elsewhere = await this.#coordinator?.follow(digest);
    return elsewhere ? { fill: this.#followed(digest, elsewhere, { claimed: false }), started: false } : null;
  }

  /** Joins the download of `digest`, or starts one. */
  async join(digest: string, source: DownloadSource): Promise<JoinResult> {
    const running = this.#running.get(digest);
    if (running) return { fill: (await running).fill, started: false };
    const parsed = parseDigest(digest);
    if (!parsed) throw new RegistryError('DIGEST_INVALID', { detail: { digest } });
    const starting = this.#open(digest, parsed, source);
    this.#running.set(digest, starting);
    const forget = () => {
      if (this.#running.get(digest) === starting) this.#running.delete(digest);
    };
    starting.then(({ fill }) => { if (fill instanceof Download) forgetWhenOver(fill, forget); }, forget);
    const { fill, lead } = await starting;
    return { fill, started: lead };
  }

  /** Leads the download here, or (workers) follows the process that leads it. */
  async #open(digest: string, parsed: ParsedDigest, source: DownloadSource): Promise<{ fill: Fill; lead: boolean }> {
    if (!this.#coordinator) return { fill: await this.#start(digest, parsed, source), lead: true };
    const claim = await this.#coordinator.claim(digest);
    if (!claim.lead) return { fill: this.#followed(digest, claim, { claimed: true }), lead: false };
    try {
      const download = await this.#start(digest, parsed, source);
      relayProgress(download, claim.publish);
      return { fill: download, lead: true };
    } catch (error) {
      claim.publish({ size: null, written: 0, state: 'failed', error: error instanceof Error ? error.message : String(error), spool: '' });
      throw error;
    }
  }

  /**
   * A fill another process leads, known here until it ends. `claimed`: join's claim holds its
   * place in #running, and the fill takes it (else the claim would stay there once the fill ended,
   * and every later pull here would join a fill long committed instead of reading the cache).
   */
  #followed(digest: string, claim: FollowedClaim, { claimed }: { claimed: boolean }): FollowedFill {
    const fill = new FollowedFill(digest, this.#store, claim.progress);
    const entry = Promise.resolve({ fill, lead: false });
    const over = () => fill.state === 'committed' || fill.state === 'failed';
    const forget = () => { if (this.#running.get(digest) === entry) this.#running.delete(digest); };
    if (over()) {
      if (claimed) this.#running.delete(digest);
    } else if (claimed || !this.#running.has(digest)) {
      this.#running.set(digest, entry);
    }
    claim.follow((progress) => {
      fill.update(progress);
      if (over()) forget();
    });
    return fill;
  }

  async #start(digest: string, parsed: ParsedDigest, source: DownloadSource): Promise<Download> {
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
      if (answer.status === 'rejected') throw answer.reason;
      // Our storage failed, not the request: told once (the log), and no internal error on top.
      const reason = (file as PromiseRejectedResult).reason;
      source.storeFailed?.(reason instanceof Error ? reason : new Error(String(reason)));
      throw new RegistryError('UNKNOWN', { message: 'the blob could not be cached; the server log says why' });
    }
    download.size = answer.value.size;
    download.from = answer.value.from;
    const run = download.run(answer.value.body, parsed, source).finally(() => this.#runs.delete(run));
    this.#runs.add(run);
    return download;
  }
}

/**
 * Calls `forget` once `download` has failed or settled. A failed download still cleans up (its
 * writer's file) before it settles, and its readers may have been cut meanwhile: a pull that comes
 * after the failure must start a download of its own, not join this one and be cut in turn.
 */
function forgetWhenOver(download: Download, forget: () => void): void {
  const check = () => {
    if (download.error === null && !download.settled) return;
    download.off('progress', check);
    forget();
  };
  download.on('progress', check);
  check();
}

/**
 * Tells followers in other processes what they can read: each batch written, every change of
 * state, and that it is over when the download settles (a failed commit leaves it 'verified').
 */
function relayProgress(download: Download, publish: (progress: FillProgress) => void): void {
  let told = '';
  const tell = () => {
    const over = download.settled && download.state !== 'committed';
    const progress = { size: download.size, written: download.written, state: over ? 'failed' as const : download.state, error: download.error?.message ?? null, spool: download.writer.id };
    const key = `${progress.size} ${progress.written} ${progress.state}`;
    if (key === told) return;
    told = key;
    publish(progress);
  };
  download.on('progress', tell);
  tell();
}
