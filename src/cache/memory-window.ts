// How far cold pulls may run ahead of their disk writers: upstream bytes held in memory, by every
// download together (downloads.memory). A download holds what it received and has not yet
// written, and, while there is room, what is written but not yet sent to all its readers (so they
// need not read it back from the file). When the window is full, those written bytes are let go
// first (readers behind read the file instead); only then does a download pause its upstream until
// writers free some. Clients read at the upstream's speed while the disk catches up, and memory
// stays bounded however many blobs are filling.

export class MemoryWindow {
  readonly limit: number;
  #held = 0;
  readonly #waiting = new Set<() => void>();
  /** Downloads' ways of letting go of what is already written. */
  readonly #reclaimers = new Set<() => void>();

  constructor(limit: number) {
    this.limit = limit;
  }

  get held(): number {
    return this.#held;
  }

  get full(): boolean {
    return this.#held >= this.limit;
  }

  hold(bytes: number): void {
    this.#held += bytes;
  }

  release(bytes: number): void {
    this.#held -= bytes;
    if (this.full || this.#waiting.size === 0) return;
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const resume of waiting) resume();
  }

  /** Registers a download's way of dropping written bytes it keeps for readers; returns its removal. */
  reclaimable(reclaim: () => void): () => void {
    this.#reclaimers.add(reclaim);
    return () => this.#reclaimers.delete(reclaim);
  }

  /** A full window lets go of every download's written bytes; true when that made room. */
  reclaim(): boolean {
    for (const reclaim of this.#reclaimers) reclaim();
    return !this.full;
  }

  /** Calls `resume` once there is room again (not at all if `cancel` comes first). */
  whenRoom(resume: () => void): void {
    this.#waiting.add(resume);
  }

  cancel(resume: () => void): void {
    this.#waiting.delete(resume);
  }
}
