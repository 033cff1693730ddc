import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { SessionHash } from './types.js';

// Upload sessions are hashed on a thread of their own (one per process, hash-worker.ts), not on
// the main thread in series with receiving the chunks: SHA-256 was a third of the server's CPU
// time in a chunked push. The state of each running hash lives in that thread; the main thread
// holds handles. A request body's chunks move there once written (their memory is transferred:
// copying them cost more than the overlap gained, bench/push.ts); other chunks are copied.

/** Bytes handed to the thread and not yet hashed, at most: beyond it the writer waits for the thread. */
const maxInFlightBytes = 32 << 20;

type Waiter<T> = { resolve: (value: T) => void; reject: (error: Error) => void };

class HashThread {
  readonly #worker = new Worker(new URL('./hash-worker.js', import.meta.url));
  readonly #digests: Waiter<string>[] = [];
  readonly #waiters: Waiter<void>[] = [];
  #inFlight = 0;
  #nextId = 0;
  #failure: Error | null = null;
  /** A handle collected drops its state in the thread. */
  readonly #handles = new FinalizationRegistry<number>((id) => this.post(['drop', id]));

  constructor(onFailure: () => void) {
    this.#worker.on('message', ([kind, value]: ['updated', number, Uint8Array[]] | ['digest', string]) => {
      if (kind === 'digest') this.#digests.shift()!.resolve(value);
      else if ((this.#inFlight -= value) < maxInFlightBytes) for (const waiter of this.#waiters.splice(0)) waiter.resolve();
      this.#keepAliveWhileWaited();
    });
    const fail = (error: Error) => {
      if (this.#failure) return;
      this.#failure = new Error(`the hashing thread failed: ${error.message}`, { cause: error });
      for (const waiter of [...this.#digests.splice(0), ...this.#waiters.splice(0)]) waiter.reject(this.#failure);
      onFailure();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    this.#worker.unref();
  }

  /** Whether the thread has died: the hashes it held are lost. */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /** A new hash's id in the thread, tied to `handle`. */
  register(handle: object): number {
    const id = this.#nextId++;
    this.#handles.register(handle, id);
    return id;
  }

  post(message: [string, number, unknown?], transfer: ArrayBuffer[] = [], bytes = 0): void {
    if (this.#failure) return;
    this.#inFlight += bytes;
    this.#worker.postMessage(message, transfer);
  }

  /** Resolves once the thread is less than `maxInFlightBytes` behind (undefined when it is already). */
  caughtUp(): Promise<void> | undefined {
    return this.#inFlight < maxInFlightBytes && !this.#failure ? undefined : this.#wait(this.#waiters);
  }

  digest(id: number): Promise<string> {
    const answer = this.#wait(this.#digests);
    this.post(['digest', id]);
    return answer;
  }

  #wait<T>(queue: Waiter<T>[]): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const answer = new Promise<T>((resolve, reject) => queue.push({ resolve, reject }));
    this.#keepAliveWhileWaited();
    return answer;
  }

  /** The thread keeps the process alive only while someone waits for it. */
  #keepAliveWhileWaited(): void {
    if (this.#digests.length + this.#waiters.length > 0) this.#worker.ref();
    else this.#worker.unref();
  }
}

let thread: HashThread | null = null;

function hashThread(): HashThread {
  // A failed thread is replaced for new hashes; the hashes it held fail their digest.
  const current: HashThread = thread ?? new HashThread(() => { if (thread === current) thread = null; });
  thread = current;
  return current;
}

/** A running hash (SHA-256 unless told) whose state lives in the hashing thread. */
export class ThreadHash implements SessionHash {
  readonly #thread: HashThread;
  readonly #id: number;

  private constructor(thread: HashThread) {
    this.#thread = thread;
    this.#id = thread.register(this);
  }

  static create(algorithm = 'sha256'): ThreadHash {
    const hash = new ThreadHash(hashThread());
    hash.#thread.post(['new', hash.#id, algorithm]);
    return hash;
  }

  update(chunks: readonly Buffer[], move = false): Promise<void> | undefined {
    const pieces: Uint8Array[] = [];
    let bytes = 0;
    for (const chunk of chunks) {
      // Only a chunk that is its whole ArrayBuffer can move; a slice of a shared one is copied.
      const whole = move && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
      pieces.push(whole ? chunk : new Uint8Array(chunk));
      bytes += chunk.byteLength;
    }
    this.#thread.post(['update', this.#id, pieces], pieces.map((piece) => piece.buffer as ArrayBuffer), bytes);
    return this.#thread.caughtUp();
  }

  /** Whether its state is lost with a thread that died (hashes created since live on a new one). */
  get lost(): boolean {
    return this.#thread.failed;
  }

  /** A separate hash that starts from this one's state. */
  copy(): ThreadHash {
    const copy = new ThreadHash(this.#thread);
    this.#thread.post(['copy', this.#id, copy.#id]);
    return copy;
  }

  /** The hex digest of what was hashed so far; the hash goes on. */
  digest(): Promise<string> {
    return this.#thread.digest(this.#id);
  }
}

const movableBodies = new WeakSet<Readable>();

/**
 * Marks a body whose chunks nobody else holds (a node:http request's: its parser copies each one),
 * so that a session writer may move them to the hashing thread once written.
 */
export function chunksMayMove(body: Readable): Readable {
  movableBodies.add(body);
  return body;
}

export function mayMoveChunks(body: Readable): boolean {
  return movableBodies.has(body);
}
