import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobDownloads, type DownloadSource } from '../../src/cache/downloads.js';
import { fillReader } from '../../src/cache/fill-reader.js';
import type { FillProgress } from '../../src/cache/followed-fill.js';
import { serveFillClaims, workerFills } from '../../src/server/fill-claims.js';
import { PrimaryHub, WorkerChannel, type PrimaryLink, type WorkerLink } from '../../src/server/ipc.js';
import { openStore, type Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/server.js';

// Fill claims are numbered: a note about one fetch of a digest never reaches a later fetch of the
// same digest. The primary's and the workers' real code, over channels that deliver each message
// (as JSON, like node:cluster's IPC) in its own turn of the event loop, in order, unless the test
// holds one direction: that is how the interleavings below are forced.

/** One direction of a channel: messages delivered in order, one per turn, while not held. */
class Direction {
  held = false;
  readonly #queue: unknown[] = [];
  constructor(private readonly target: EventEmitter) {}

  get pending(): boolean {
    return !this.held && this.#queue.length > 0;
  }

  push(message: unknown): void {
    this.#queue.push(JSON.parse(JSON.stringify(message)));
    this.#next();
  }

  release(): void {
    this.held = false;
    this.#next();
  }

  #next(): void {
    setImmediate(() => {
      if (this.held || this.#queue.length === 0) return;
      this.target.emit('message', this.#queue.shift());
      this.#next();
    });
  }
}

/** A worker joined to `hub`: its two ends, and each direction to hold. */
function link(hub: PrimaryHub): { worker: PrimaryLink; up: Direction; down: Direction } {
  const primaryEnd = new EventEmitter();
  const workerEnd = new EventEmitter();
  const up = new Direction(primaryEnd);
  const down = new Direction(workerEnd);
  const asWorker: WorkerLink = Object.assign(primaryEnd, { send: (message: unknown) => down.push(message), isConnected: () => true });
  hub.attach(asWorker);
  return { worker: Object.assign(workerEnd, { send: (message: unknown) => up.push(message) }), up, down };
}

const directions: Direction[] = [];

/** Lets every message not held be delivered, and what they cause (bounded). */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (!directions.some((direction) => direction.pending)) return;
  }
  throw new Error('the channels did not settle');
}

function worker(hub: PrimaryHub): { fills: ReturnType<typeof workerFills>; up: Direction; down: Direction } {
  const { worker: end, up, down } = link(hub);
  directions.push(up, down);
  return { fills: workerFills(new WorkerChannel(end)), up, down };
}

const content = randomBytes(3 << 20);
const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

let stores: Store[];
test.before(async () => {
  const dataDir = await tempDir();
  stores = [];
  for (const index of [0, 1, 2]) stores.push(await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: index === 0 }));
});
test.after(async () => { await Promise.all(stores.map((store) => store.close())); });

/** An upstream fed by the test, and the commit of a cold pull (the bytes placed in the store). */
function source(body: PassThrough): DownloadSource {
  return { fetch: async () => ({ size: content.length, body, from: 'upstream.test' }), commit: async (_size, place) => { await place(); } };
}

test('two pulls on one worker asking while fetch 1 fails and fetch 2 starts: the failure reaches the first only', async () => {
  const hub = new PrimaryHub();
  serveFillClaims(hub);
  const [a, b, c] = [worker(hub), worker(hub), worker(hub)];
  const [onA, onB, onC] = [a, b, c].map(({ fills }, index) => new BlobDownloads(stores[index]!.blobs, { memory: 64 << 20, coordinator: fills }));
  // Fetch 1: worker A leads it.
  const first = new PassThrough();
  assert.ok((await onA!.join(digest, source(first))).started);
  first.write(content.subarray(0, 1 << 20));
  await settle();
  // Worker B's first pull asks and is answered (fetch 1), but the answer waits on the way back.
  b.down.held = true;
  const followingFirst = onB!.follow(digest);
  await settle();
  // B's second pull asks too (B has no answer yet, so it knows of no fetch); the question waits.
  b.up.held = true;
  const followingSecond = onB!.follow(digest);
  // Fetch 1 fails (its note to B waits behind the first answer), and worker C starts fetch 2.
  first.destroy(new Error('the upstream connection was cut'));
  await onA!.idle();
  await settle();
  const second = new PassThrough();
  assert.ok((await onC!.join(digest, source(second))).started, 'fetch 2 is a new one');
  await settle();
  // B's second question reaches the primary now: answered with fetch 2, behind fetch 1's failure.
  b.up.release();
  await settle();
  b.down.release();
  const [one, two] = await Promise.all([followingFirst, followingSecond]);
  await settle();
  assert.is(one!.fill.state, 'failed', 'the pull that followed fetch 1 fails with it');
  assert.is(two!.fill.state, 'running', 'fetch 1\'s failure, heard before the answer, was not applied to fetch 2');
  const body = collect(fillReader(two!.fill, stores[1]!.blobs, { start: 0, end: content.length - 1 }));
  second.end(content);
  assert.ok((await body).equals(content), 'the second pull reads fetch 2 whole');
  await onC!.idle();
});

test('a worker that joined another worker\'s fetch forgets it once committed: its next pull reads the cache', async () => {
  const hub = new PrimaryHub();
  serveFillClaims(hub);
  const [a, b] = [worker(hub), worker(hub)];
  const [onA, onB] = [a, b].map(({ fills }, index) => new BlobDownloads(stores[index]!.blobs, { memory: 64 << 20, coordinator: fills }));
  const upstream = new PassThrough();
  assert.ok((await onA!.join(digest, source(upstream))).started);
  upstream.write(content.subarray(0, 1 << 20));
  await settle();
  const joined = await onB!.join(digest, source(new PassThrough()));
  assert.not.ok(joined.started, 'B follows A\'s fetch');
  const body = collect(fillReader(joined.fill, stores[1]!.blobs, { start: 0, end: content.length - 1 }));
  upstream.end(content.subarray(1 << 20));
  assert.ok((await body).equals(content));
  await onA!.idle();
  await settle();
  assert.is(joined.fill.state, 'committed');
  assert.is(await onB!.follow(digest), null, 'no fetch runs: a pull on B now reads the committed blob');
});

test('a late note of a worker\'s earlier fetch does not reach the followers of its next fetch of the digest', async () => {
  const hub = new PrimaryHub();
  serveFillClaims(hub);
  const [a, b] = [worker(hub), worker(hub)];
  const progress = (state: FillProgress['state'], written: number): FillProgress => ({ size: content.length, written, state, error: state === 'failed' ? 'cut' : null, spool: 'x' });
  const earlier = await a.fills.claim(digest);
  assert.ok(earlier.lead);
  earlier.publish(progress('failed', 0));
  await settle();
  const next = await a.fills.claim(digest);
  assert.ok(next.lead, 'A leads the next fetch too');
  next.publish(progress('running', 0));
  await settle();
  const followed = await b.fills.follow(digest);
  const heard: FillProgress['state'][] = [];
  followed!.follow((update) => heard.push(update.state));
  // The earlier fetch's writer reports once more after it failed (a write that completes late).
  earlier.publish(progress('failed', 1 << 20));
  await settle();
  next.publish(progress('committed', content.length));
  await settle();
  assert.equal(heard, ['committed']);
});

test.run();
