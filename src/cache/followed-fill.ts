import { EventEmitter } from 'node:events';
import type { BlobDriver } from '../store/index.js';
import { availableBytes, type Fill, type FillState } from './download.js';

// Cold pulls of one digest arriving at several processes (workers) share one upstream fetch: one
// process leads it (a Download), the others follow its progress, which a FillCoordinator relays,
// and read what it has written from its spool file (the same disk), then the committed blob.

/** What a leading download tells its followers: enough to read the bytes it has written. */
export interface FillProgress {
  size: number | null;
  written: number;
  state: FillState;
  error: string | null;
  /** The writer's spool name (BlobDriver.readWriting). */
  spool: string;
}

/** A fetch another process leads: its progress so far (once known) and `follow` for what comes next. */
export interface FollowedClaim {
  lead: false;
  progress: FillProgress;
  follow: (listener: (progress: FillProgress) => void) => void;
}

/** Who fetches a digest, across the processes serving one store. */
export interface FillCoordinator {
  /**
   * Leads the fetch of `digest` here (then `publish` its progress until it ends), or follows the
   * one another process leads (answered once it has its first progress, so the size is known).
   */
  claim(digest: string): Promise<{ lead: true; publish: (progress: FillProgress) => void } | FollowedClaim>;
  /** Follows the fetch of `digest` another process leads; null when none runs. */
  follow(digest: string): Promise<FollowedClaim | null>;
}

/** A download another process leads, read from its spool file as it grows. */
export class FollowedFill extends EventEmitter implements Fill {
  readonly digest: string;
  readonly #store: BlobDriver;
  #progress: FillProgress;

  constructor(digest: string, store: BlobDriver, progress: FillProgress) {
    super();
    this.setMaxListeners(0);
    this.digest = digest;
    this.#store = store;
    this.#progress = progress;
  }

  update(progress: FillProgress): void {
    this.#progress = progress;
    this.emit('progress');
  }

  get size(): number | null {
    return this.#progress.size;
  }

  get state(): FillState {
    return this.#progress.state;
  }

  get error(): Error | null {
    return this.#progress.error === null ? null : new Error(this.#progress.error);
  }

  /** Only written bytes can be read here. */
  get available(): number {
    return availableBytes(this.#progress, this.#progress.written);
  }

  get memoryStart(): number {
    return this.#progress.written;
  }

  slice(): Buffer | null {
    return null;
  }

  readWritten(position: number, length: number): Promise<Buffer | null> {
    if (this.state === 'committed') return Promise.resolve(null);
    return this.#store.readWriting(this.#progress.spool, position, length);
  }
}
