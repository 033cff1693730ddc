// A download's bytes held in memory: upstream pieces appended at the end, whole pieces let go from
// the front, any position found by binary search. A full window holds thousands of pieces (256 MiB
// of 64 KiB reads), and readers ask for a slice per piece: a walk from the front for each made
// that quadratic (a tenth of a cold pull's CPU when the writer fell behind).

export class HeldBytes {
  /** The pieces; those before #head are let go (the array is compacted now and then). */
  #pieces: Buffer[] = [];
  /** The blob position of each piece's first byte. */
  #starts: number[] = [];
  #head = 0;
  #end: number;

  constructor(start = 0) {
    this.#end = start;
  }

  /** The position of the first byte held (the end when nothing is). */
  get start(): number {
    return this.#head < this.#pieces.length ? this.#starts[this.#head]! : this.#end;
  }

  get end(): number {
    return this.#end;
  }

  append(piece: Buffer): void {
    this.#pieces.push(piece);
    this.#starts.push(this.#end);
    this.#end += piece.length;
  }

  /** Lets go of the pieces that end at or before `position`; returns how many bytes that freed. */
  dropBefore(position: number): number {
    const before = this.start;
    while (this.#head < this.#pieces.length && this.#starts[this.#head]! + this.#pieces[this.#head]!.length <= position) this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#starts = this.#starts.slice(this.#head);
      this.#head = 0;
    }
    return this.start - before;
  }

  /** Bytes from `from` (before `until`) without a copy, up to the end of the piece holding `from`; null when not held. */
  slice(from: number, until: number): Buffer | null {
    if (from < this.start || from >= this.#end) return null;
    let [low, high] = [this.#head, this.#pieces.length - 1];
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.#starts[middle]! <= from) low = middle;
      else high = middle - 1;
    }
    const offset = this.#starts[low]!;
    const piece = this.#pieces[low]!;
    return piece.subarray(from - offset, Math.min(piece.length, until - offset));
  }
}
