// How far cold pulls may run ahead of their disk writers: upstream bytes held in memory, by every
// download together (downloads.memory). A download holds what it received and has not yet
// written; past the limit each download
// pauses its upstream until writers free some. Clients then read at the upstream's speed while
// the disk catches up, and memory stays bounded however many blobs are filling.

export class MemoryWindow {
  readonly limit: number;
  #held = 0;
  readonly #waiting = new Set<() => void>();

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

  /** Calls `resume` once there is room again (not at all if `cancel` comes first). */
  whenRoom(resume: () => void): void {
    this.#waiting.add(resume);
  }

  cancel(resume: () => void): void {
    this.#waiting.delete(resume);
  }
}
