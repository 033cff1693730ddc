import { syncPath } from './files.js';

/**
 * How much of an upload session is written between two background syncs. Left to the kernel,
 * a pushed blob's pages stay dirty until the fsync that precedes its acknowledgement, which then
 * writes all of them (165–380 ms per 256 MiB on the bench machine) while the client waits. With
 * 16 MiB the finish waits 10–15 ms for the last sync; 32–128 MiB left 20–100 ms.
 */
export const sessionWritebackBytes = 16 << 20;

/** fdatasync of a file by its path, through a descriptor of its own. */
export const datasyncPath = (path: string): Promise<void> => syncPath(path, { dataOnly: true });

/**
 * Starts the disk writeback of files while they are still being written: each time a file's
 * written bytes cross a multiple of `everyBytes`, its data is synced in the background, on the
 * thread pool, while the writer goes on. At most one sync per file at a time: a crossing met while
 * one is in flight is skipped (the next sync catches up). Nothing waits for these syncs and their
 * errors are dropped: they only leave less for the fsync that durability waits for, which reports
 * any failure itself. Its own descriptor lets a sync outlive the write (a PATCH) that started it.
 */
export class Writeback {
  readonly #everyBytes: number;
  readonly #sync: (path: string) => Promise<void>;
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(options: { everyBytes: number; sync?: (path: string) => Promise<void> }) {
    this.#everyBytes = options.everyBytes;
    this.#sync = options.sync ?? datasyncPath;
  }

  /** Notes that bytes [from, to) of `path` were written. */
  written(path: string, from: number, to: number): void {
    if (Math.floor(from / this.#everyBytes) === Math.floor(to / this.#everyBytes) || this.#inFlight.has(path)) return;
    const sync = this.#sync(path)
      .catch(() => undefined)
      .finally(() => this.#inFlight.delete(path));
    this.#inFlight.set(path, sync);
  }

  /**
   * Resolves once no sync of `path` is in flight. A finishing upload waits for this before its
   * metadata write: SQLite's commit fsyncs on the event loop, and behind a sync in flight (the
   * file system's journal) that blocked every request for up to the writeback of an interval.
   */
  idle(path: string): Promise<void> {
    return this.#inFlight.get(path) ?? Promise.resolve();
  }
}
