import type { SqlDatabase } from './sql.js';
import type { ImageRef, Pulls } from './types.js';

/** How long pull timestamps are gathered before they are written in one transaction. */
const pullFlushMs = 2000;

interface Pull {
  kind: 'manifest' | 'blob';
  repo: string;
  name: string;
  digest: string;
  at: number;
  downloads: number;
}

/** Pull times, gathered in memory so that a pull never waits on a write. */
export class BatchedPulls implements Pulls {
  readonly #pending = new Map<string, Pull>();
  #timer: NodeJS.Timeout | null = null;
  /** The latest write, begun by the timer or a caller. */
  #writing: Promise<void> = Promise.resolve();

  /** `now`: the store's clock (tests move it rather than wait between pulls). */
  constructor(private readonly database: SqlDatabase, private readonly now: () => number = Date.now) {}

  note(kind: 'manifest' | 'blob', { repo, name }: ImageRef, digest: string, options: { download?: boolean } = {}): void {
    const key = `${kind}\u0000${repo}\u0000${name}\u0000${digest}`;
    const download = options.download ? 1 : 0;
    const pending = this.#pending.get(key);
    // Updated in place: a busy tag's pulls allocate nothing between two flushes.
    if (pending) {
      pending.at = this.now();
      pending.downloads += download;
    } else {
      this.#pending.set(key, { kind, repo, name, digest, at: this.now(), downloads: download });
    }
    this.#timer ??= setTimeout(() => void this.flush().catch(() => undefined), pullFlushMs).unref();
  }

  /**
   * Writes what was noted so far. Resolves once every earlier write has ended too, one the timer
   * began included: a caller that flushes (the collector) then finds each pull in the database
   * (unless an earlier write failed: its pulls are not written again).
   */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const pulls = [...this.#pending.values()];
    this.#pending.clear();
    const write = this.#writing.catch(() => undefined).then(() => (pulls.length === 0 ? undefined : this.#write(pulls)));
    this.#writing = write;
    return write;
  }

  async #write(pulls: Pull[]): Promise<void> {
    await this.database.transaction(async (sql) => {
      for (const pull of pulls) {
        const params = [pull.at, pull.repo, pull.name, pull.digest];
        if (pull.kind === 'blob') await sql.run('UPDATE repository_blobs SET pulled_at = $1 WHERE repo = $2 AND name = $3 AND digest = $4', params);
        else await sql.run('UPDATE repository_manifests SET pulled_at = $1, downloads = downloads + $5 WHERE repo = $2 AND name = $3 AND digest = $4', [...params, pull.downloads]);
      }
    });
  }
}
