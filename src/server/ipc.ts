// Messages between the primary and its workers over node:cluster's IPC channel: requests with
// an answer (a worker asks the primary), one-way notes (a worker tells the primary), and
// broadcasts (the primary tells workers). Bodies are plain JSON values.

type Json = unknown;

/** A worker's end of the channel: its `process`. */
export interface PrimaryLink {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  send?(message: unknown): unknown;
}

/** The primary's end of one worker's channel: node:cluster's Worker. */
export interface WorkerLink {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'exit', listener: () => void): unknown;
  send(message: unknown): unknown;
  isConnected(): boolean;
}

interface Request { wharf: 'request'; id: number; topic: string; body: Json }
interface Answer { wharf: 'answer'; id: number; body?: Json; error?: string }
interface Note { wharf: 'note'; topic: string; body: Json }
type Message = Request | Answer | Note;

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && 'wharf' in value;
}

/** A worker's end: ask the primary, tell it, hear its broadcasts. */
export class WorkerChannel {
  readonly #pending = new Map<number, { resolve: (body: Json) => void; reject: (error: Error) => void }>();
  readonly #handlers = new Map<string, (body: Json) => void>();
  #next = 0;

  constructor(private readonly process: PrimaryLink) {
    process.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.wharf === 'answer') {
        const waiting = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error !== undefined) waiting?.reject(new Error(message.error));
        else waiting?.resolve(message.body);
      } else if (message.wharf === 'note') {
        this.#handlers.get(message.topic)?.(message.body);
      }
    });
  }

  request<T>(topic: string, body: Json): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (body: Json) => void, reject });
      this.process.send!({ wharf: 'request', id, topic, body } satisfies Request);
    });
  }

  tell(topic: string, body: Json): void {
    this.process.send!({ wharf: 'note', topic, body } satisfies Note);
  }

  /** What to do with the primary's broadcasts on `topic`. */
  on(topic: string, handler: (body: Json) => void): void {
    this.#handlers.set(topic, handler);
  }
}

export type RequestHandler<Worker> = (body: Json, worker: Worker) => Json | Promise<Json>;
export type NoteHandler<Worker> = (body: Json, worker: Worker) => void;

/** The primary's end: answer workers, hear their notes, broadcast. */
export class PrimaryHub<Worker extends WorkerLink = WorkerLink> {
  readonly #workers = new Set<Worker>();
  readonly #requests = new Map<string, RequestHandler<Worker>>();
  readonly #notes = new Map<string, NoteHandler<Worker>>();
  /** Told of every worker that exits (gather's waits). */
  readonly #exits = new Set<(worker: Worker) => void>();

  attach(worker: Worker): void {
    this.#workers.add(worker);
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.wharf === 'request') {
        const handler = this.#requests.get(message.topic);
        Promise.resolve()
          .then(() => (handler ? handler(message.body, worker) : Promise.reject(new Error(`no handler for ${message.topic}`))))
          .then((body) => this.#send(worker, { wharf: 'answer', id: message.id, body }),
            (error: unknown) => this.#send(worker, { wharf: 'answer', id: message.id, error: error instanceof Error ? error.message : String(error) }));
      } else if (message.wharf === 'note') {
        this.#notes.get(message.topic)?.(message.body, worker);
      }
    });
    worker.once('exit', () => {
      this.#workers.delete(worker);
      for (const exited of this.#exits) exited(worker);
    });
  }

  answer(topic: string, handler: RequestHandler<Worker>): void {
    this.#requests.set(topic, handler);
  }

  hear(topic: string, handler: NoteHandler<Worker>): void {
    this.#notes.set(topic, handler);
  }

  /** Sends `body` on `topic` to every worker (but `except`). */
  broadcast(topic: string, body: Json, except?: Worker): void {
    for (const worker of this.#workers) if (worker !== except) this.#send(worker, { wharf: 'note', topic, body });
  }

  /**
   * Broadcasts `body` on `topic` and resolves with every worker's note on `reply`, once each has
   * sent one or exited (those that exit first give none). One gather per `reply` at a time.
   */
  gather(topic: string, body: Json, reply: string): Promise<Json[]> {
    const waiting = new Set([...this.#workers].filter((worker) => worker.isConnected()));
    const answers: Json[] = [];
    return new Promise((resolve) => {
      if (waiting.size === 0) return resolve(answers);
      const settle = (worker: Worker, answer?: Json) => {
        if (!waiting.delete(worker)) return;
        if (answer !== undefined) answers.push(answer);
        if (waiting.size > 0) return;
        this.#notes.delete(reply);
        this.#exits.delete(settle);
        resolve(answers);
      };
      this.#notes.set(reply, (answer, worker) => settle(worker, answer));
      this.#exits.add(settle);
      for (const worker of waiting) this.#send(worker, { wharf: 'note', topic, body });
    });
  }

  tell(worker: Worker, topic: string, body: Json): void {
    this.#send(worker, { wharf: 'note', topic, body });
  }

  #send(worker: Worker, message: Message): void {
    if (worker.isConnected()) worker.send(message);
  }
}
