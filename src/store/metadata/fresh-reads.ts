// Hot reads (a tag's digest, whether an image links a blob) answered from memory while the
// database is unchanged. Whether it changed is asked before every answer, of the database itself
// (SQLite: its WAL-index header, which every commit by any process rewrites), so a tag moved by
// another worker, `wharf promote` or the collector is seen by the very next request.

/** A read by key, answered again without the database while nothing was committed. */
export interface Reads {
  get<T>(key: string, read: () => Promise<T>): Promise<T>;
}

/** Every read goes to the database (in transactions, which must see their own writes; PostgreSQL). */
export const uncachedReads: Reads = { get: (_key, read) => read() };

/** Kept answers start over at this many (the working set of a busy registry is far smaller). */
const maxEntries = 10_000;

/**
 * `changed` says whether a commit may have happened since it was last asked (true on the first
 * call). Answers are frozen: every caller shares them.
 */
export class FreshReads implements Reads {
  readonly #entries = new Map<string, unknown>();
  /** Bumped whenever the entries are dropped: a read begun before that must not be kept. */
  #generation = 0;

  constructor(private readonly changed: () => boolean) {}

  async get<T>(key: string, read: () => Promise<T>): Promise<T> {
    if (this.changed() || this.#entries.size >= maxEntries) {
      this.#entries.clear();
      this.#generation++;
    } else if (this.#entries.has(key)) {
      return this.#entries.get(key) as T;
    }
    // Begun after the check: what it reads is at least as new as the state the check saw.
    const generation = this.#generation;
    const value = await read();
    if (generation === this.#generation) this.#entries.set(key, typeof value === 'object' && value !== null ? Object.freeze(value) : value);
    return value;
  }
}
