import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HeldBytes } from '../../src/cache/held-bytes.js';

// A download's bytes in memory: thousands of pieces (a full window), let go from the front while
// readers slice anywhere, across the compaction that drops let-go pieces from its arrays.

test('slices at any held position match the bytes received, before and after pieces are let go and the arrays compacted', () => {
  const pieces = Array.from({ length: 3000 }, () => randomBytes(randomInt(1, 200)));
  const whole = Buffer.concat(pieces);
  const held = new HeldBytes();
  for (const piece of pieces) held.append(piece);
  assert.is(held.end, whole.length);
  const check = () => {
    for (let i = 0; i < 500; i++) {
      const from = randomInt(held.start, held.end);
      const until = randomInt(from + 1, held.end + 1);
      const slice = held.slice(from, until)!;
      assert.ok(slice.length > 0 && slice.length <= until - from);
      assert.ok(slice.equals(whole.subarray(from, from + slice.length)), `bytes at ${from}`);
    }
  };
  check();
  let freed = 0;
  for (const position of [0, 10, whole.length / 4, whole.length / 2, (whole.length * 3) / 4]) {
    const before = held.start;
    freed += held.dropBefore(Math.floor(position));
    assert.ok(held.start <= Math.floor(position) || held.start === before, 'only whole pieces before the position go');
    assert.is(freed, held.start, 'what was freed is what no longer is held');
    if (held.start > 0) assert.is(held.slice(held.start - 1, held.end), null, 'nothing before the first held byte');
    check();
  }
  assert.is(held.slice(held.end, held.end + 1), null, 'nothing past the end');
  held.dropBefore(held.end);
  assert.is(held.start, held.end, 'everything let go');
  assert.is(held.slice(held.end - 1, held.end), null);
});

test('a held-bytes that starts at a position holds nothing before it', () => {
  const held = new HeldBytes(1000);
  assert.is(held.start, 1000);
  held.append(Buffer.from('abc'));
  assert.is(held.slice(999, 1003), null);
  assert.is(held.slice(1001, 1003)!.toString(), 'bc');
});

test.run();
