import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferPool, FileBody, openFile } from '../../src/store/blobs/file-body.js';
import { tempDir } from '../helpers/server.js';

// The filesystem driver's body sent into a writable through its ring of reused buffers: a buffer
// is read into again only after the write that carried it has called back, so a transport that
// holds on to chunks (a corked socket, an HTTP/2 stream, TLS) never sees them change under it.

const content = randomBytes((9 << 20) + 12_345);
let file: string;
test.before(async () => {
  file = join(await tempDir(), 'blob');
  await writeFile(file, content);
});

/**
 * A transport that, like a socket under load, keeps each chunk (and its callback) until `held`
 * more have arrived, and checks on release that the chunk is still what it was handed.
 */
function holdingSink(held: number): { sink: Writable; received: Buffer[]; changed: () => number; ended: Promise<void> } {
  const received: Buffer[] = [];
  const waiting: { chunk: Buffer; copy: Buffer; callback: (error?: Error | null) => void }[] = [];
  let changed = 0;
  const release = () => {
    const next = waiting.shift()!;
    if (!next.chunk.equals(next.copy)) changed++;
    next.callback();
  };
  let ended!: () => void;
  const done = new Promise<void>((resolve) => { ended = resolve; });
  const sink = new Writable();
  sink.write = ((chunk: Buffer, callback: (error?: Error | null) => void) => {
    const copy = Buffer.from(chunk);
    received.push(copy);
    waiting.push({ chunk, copy, callback });
    // Let the body run ahead as far as it will before anything is released.
    setImmediate(() => { while (waiting.length > held) release(); });
    return false;
  }) as Writable['write'];
  sink.end = (() => {
    setImmediate(() => {
      while (waiting.length) release();
      ended();
    });
    return sink;
  }) as Writable['end'];
  return { sink, received, changed: () => changed, ended: done };
}

test('sendTo delivers every byte and never refills a buffer a write still holds', async () => {
  const { fd, size } = await openFile(file);
  const body = new FileBody({ fd, start: 0, end: size, pool: new BufferPool({ maxIdle: 4, maxLent: 16 }), blobPath: null });
  const { sink, received, changed, ended } = holdingSink(3);
  body.sendTo(sink);
  await ended;
  assert.is(changed(), 0, 'a chunk changed before its write called back');
  assert.is(createHash('sha256').update(Buffer.concat(received)).digest('hex'), createHash('sha256').update(content).digest('hex'));
  assert.ok(received.length >= 10, 'sent in 1 MiB chunks');
});

test('a range is sent exactly, and the file is closed when the body is done', async () => {
  const { fd } = await openFile(file);
  const body = new FileBody({ fd, start: 1_000_001, end: 5_000_003, pool: new BufferPool({ maxIdle: 4, maxLent: 16 }), blobPath: null });
  const { sink, received, ended } = holdingSink(1);
  const closed = new Promise((resolve) => body.once('close', resolve));
  body.sendTo(sink);
  await ended;
  assert.ok(Buffer.concat(received).equals(content.subarray(1_000_001, 5_000_003)));
  await closed;
});

test('the same body read as a Readable gives the same bytes', async () => {
  const { fd, size } = await openFile(file);
  const body = new FileBody({ fd, start: 0, end: size, pool: new BufferPool({ maxIdle: 4, maxLent: 16 }), blobPath: null });
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  assert.ok(Buffer.concat(chunks).equals(content));
});

test('beyond the pool\'s lending limit, a body gets one buffer only, still sends every byte, and all come back', async () => {
  const pool = new BufferPool({ maxIdle: 4, maxLent: 2 });
  let mostLent = 0;
  const sends = await Promise.all([0, 1, 2].map(async () => {
    const { fd, size } = await openFile(file);
    const body = new FileBody({ fd, start: 0, end: size, pool, blobPath: null });
    const { sink, received, changed, ended } = holdingSink(0);
    const write = sink.write.bind(sink);
    sink.write = ((chunk: Buffer, callback: (error?: Error | null) => void) => {
      mostLent = Math.max(mostLent, pool.lent);
      return write(chunk, callback);
    }) as Writable['write'];
    body.sendTo(sink);
    return { received, changed, ended };
  }));
  for (const { received, changed, ended } of sends) {
    await ended;
    assert.is(changed(), 0);
    assert.ok(Buffer.concat(received).equals(content), 'every byte, with one buffer');
  }
  // Extras up to the limit (2), then one each for the bodies that came later: 4 at most, not 3 x 4.
  assert.ok(mostLent >= 3 && mostLent <= 4, `at most 4 buffers out, saw ${mostLent}`);
  assert.is(pool.lent, 0, 'all given back');
});

test('into a TLS socket, one write at a time while the next buffers are read ahead', async () => {
  // Node's TLS layer copies writes queued behind one in flight into one new buffer: a body sent
  // over TLS keeps one write out, the ring's other buffers read and waiting behind it.
  const { fd, size } = await openFile(file);
  const body = new FileBody({ fd, start: 0, end: size, pool: new BufferPool({ maxIdle: 4, maxLent: 16 }), blobPath: null });
  const received: Buffer[] = [];
  const waiting: ((error?: Error | null) => void)[] = [];
  let [sent, written, mostOut, mostAhead] = [0, 0, 0, 0];
  // A write is let go once the body shows it read ahead (or has read everything), or three pile up.
  const settle = () => setImmediate(() => {
    if (waiting.length > 2 || (waiting.length > 0 && (sent - written >= 2 * (1 << 20) || sent === size))) waiting.shift()!();
  });
  body.on('sent', (bytes: number) => {
    sent += bytes;
    mostAhead = Math.max(mostAhead, sent - written);
    settle();
  });
  let ended!: () => void;
  const done = new Promise<void>((resolve) => { ended = resolve; });
  const sink: Writable = Object.assign(new Writable(), { socket: { encrypted: true } });
  sink.write = ((chunk: Buffer, callback: (error?: Error | null) => void) => {
    received.push(Buffer.from(chunk));
    written += chunk.length;
    waiting.push((error) => callback(error));
    mostOut = Math.max(mostOut, waiting.length);
    settle();
    return false;
  }) as Writable['write'];
  sink.end = (() => {
    while (waiting.length) waiting.shift()!();
    ended();
    return sink;
  }) as Writable['end'];
  body.sendTo(sink);
  await done;
  assert.is(mostOut, 1, 'one write out at a time');
  assert.ok(mostAhead >= 2 << 20, 'buffers read ahead behind the write');
  assert.ok(Buffer.concat(received).equals(content));
});

test.run();
