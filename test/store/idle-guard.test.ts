import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { idleGuard } from '../../src/store/blobs/s3-objects.js';
import { manualClock } from '../helpers/manual-clock.js';

// The idle timeout on an object's body from S3 (the SDK times only the answer's headers): it runs
// while the reader waits for the store, never while the reader is slow. The store's body is a
// PassThrough the test writes into; the clock moves only when the test moves it.

const idleMs = 1000;

test('a slow reader (its socket backed up) is never timed out: no timer runs while the store has sent more than it took', async () => {
  const clock = manualClock();
  const store = new PassThrough();
  const body = idleGuard(store, idleMs, () => new Error('idle'), clock.setTimer);
  const bytes = randomBytes(1 << 20);
  // As a socket delivers it: in pieces, more than the reader takes.
  for (let at = 0; at < bytes.length; at += 16_384) store.write(bytes.subarray(at, at + 16_384));
  const received: Buffer[] = [];
  let release: (() => void) | null = null;
  const firstWrite = new Promise<void>((resolve) => {
    body.pipe(new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        // The first chunk is held: the reader is stuck, as a client that reads nothing more.
        if (release === null) {
          release = callback;
          resolve();
        } else {
          callback();
        }
      },
    }));
  });
  await firstWrite;
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(clock.nextDue(), null, 'no timer while the reader holds things up');
  clock.advance(60 * idleMs);
  assert.not.ok(body.destroyed);
  const ended = new Promise((resolve) => body.once('end', resolve));
  release!();
  store.end();
  await ended;
  assert.ok(Buffer.concat(received).equals(bytes), 'every byte arrives');
});

test('a store that stops sending while the reader waits fails the body after the idle time, and lets go of the store', async () => {
  const clock = manualClock();
  const store = new PassThrough();
  const body = idleGuard(store, idleMs, () => new Error('idle'), clock.setTimer);
  const failed = new Promise<Error>((resolve) => body.once('error', resolve));
  const first = new Promise((resolve) => body.once('data', resolve));
  store.write(randomBytes(1000));
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(clock.nextDue() !== null, 'the reader waits for the store: the clock runs');
  clock.advance(idleMs - 1);
  assert.not.ok(body.destroyed, 'not before the idle time');
  clock.advance(1);
  assert.is((await failed).message, 'idle');
  assert.ok(store.destroyed, "the store's body is let go");
});

test.run();
