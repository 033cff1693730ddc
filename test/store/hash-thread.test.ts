import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ThreadHash } from '../../src/store/blobs/hash-thread.js';
import { startWharf, tempDir } from '../helpers/server.js';

// Upload sessions' running hashes live on the hashing thread: the digest is SHA-256 of what was
// handed over, copies go on separately, and moved chunks leave the main thread.

const sha256 = (...chunks: Buffer[]) => createHash('sha256').update(Buffer.concat(chunks)).digest('hex');

test('the digest is that of the chunks handed over, copied or moved; the hash goes on after it', async () => {
  const [a, b, c] = [randomBytes(100_000), randomBytes(70_000), randomBytes(5)];
  const [aKept, bKept] = [Buffer.from(a), Buffer.from(b)];
  const hash = ThreadHash.create();
  await hash.update([a]);
  assert.is(a.length, 100_000, 'a copied chunk stays the caller\'s');
  await hash.update([b], true);
  assert.is(b.length, 0, 'a moved chunk is gone from this thread');
  assert.is(await hash.digest(), sha256(aKept, bKept));
  await hash.update([c]);
  assert.is(await hash.digest(), sha256(aKept, bKept, c));
});

test('a slice of a shared buffer is copied even when chunks may move', async () => {
  const whole = randomBytes(300_000);
  const hash = ThreadHash.create();
  await hash.update([whole.subarray(0, 100_000), whole.subarray(100_000)], true);
  assert.is(whole.length, 300_000);
  assert.is(await hash.digest(), sha256(whole));
});

test('a copy goes on from the state it was made at, apart from the original', async () => {
  const [a, b, c] = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
  const hash = ThreadHash.create();
  await hash.update([a]);
  const copy = hash.copy();
  await copy.update([b]);
  await hash.update([c]);
  assert.is(await copy.digest(), sha256(a, b));
  assert.is(await hash.digest(), sha256(a, c));
});

test('more than 32 MiB not yet hashed makes the writer wait for the thread', async () => {
  const chunks = Array.from({ length: 5 }, () => randomBytes(8 << 20));
  const hash = ThreadHash.create();
  const waits = chunks.map((chunk) => hash.update([chunk]));
  assert.is(waits[0], undefined, 'under the bound: no wait');
  assert.instance(waits[4], Promise, 'past the bound: a wait');
  await waits[4];
  assert.is(await hash.digest(), sha256(...chunks));
});

test('a hash nobody waits for keeps no process alive: a process that started one ends on its own', async () => {
  // A module file: run with -e, the process ended even when the thread held it.
  const script = join(await tempDir(), 'start-hash.mjs');
  const module = new URL('../../src/store/blobs/hash-thread.js', import.meta.url).href;
  await writeFile(script, `import { ThreadHash } from ${JSON.stringify(module)};\nThreadHash.create();\n`);
  const child = spawn(process.execPath, [script], { stdio: 'ignore' });
  const ended = await new Promise<number | string | null>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('still running after 30 s'); }, 30_000);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
  assert.is(ended, 0);
});


test('a hashing thread that dies loses no upload: the next chunk and the finish rebuild the hash from the stored bytes', async () => {
  const wharf = await startWharf();
  try {
    const [first, second] = [randomBytes(300_000), randomBytes(200_000)];
    const uploads = `${wharf.url}/v2/docker-local/app/blobs/uploads/`;
    const started = await fetch(uploads, { method: 'POST' });
    assert.is(started.status, 202);
    const location = new URL(started.headers.get('location')!, wharf.url).href;
    const patch = (bytes: Buffer, from: number) => fetch(location, { method: 'PATCH', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + bytes.length - 1}` } });
    assert.is((await patch(first, 0)).status, 202);
    // The server runs in this process: a hash of an algorithm there is none of kills its thread,
    // the one holding the session's hash. Waiting for its digest waits for that death.
    const killed = await ThreadHash.create('no-such-algorithm').digest().then(() => null, (error: Error) => error.message);
    assert.match(killed ?? '', 'the hashing thread failed');
    assert.is((await patch(second, first.length)).status, 202, 'the next chunk goes on');
    const digest = `sha256:${sha256(first, second)}`;
    assert.is((await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' })).status, 201, 'and the finish verifies the whole upload');
    const pulled = await fetch(`${wharf.url}/v2/docker-local/app/blobs/${digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(Buffer.concat([first, second])));
  } finally {
    await wharf.cleanup();
  }
});

test('a finish waiting for its digest when the hashing thread dies verifies the upload from its stored bytes', async () => {
  const wharf = await startWharf();
  const digestOf = Object.getOwnPropertyDescriptor(ThreadHash.prototype, 'digest')!;
  try {
    const bytes = randomBytes(300_000);
    const uploads = `${wharf.url}/v2/docker-local/app/blobs/uploads/`;
    const started = await fetch(uploads, { method: 'POST' });
    const location = new URL(started.headers.get('location')!, wharf.url).href;
    assert.is((await fetch(location, { method: 'PATCH', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } })).status, 202);
    // The server runs in this process. Its next digest request is queued in the thread behind a
    // hash of an algorithm there is none of: the thread dies with the finish waiting on it.
    const original = digestOf.value as (this: ThreadHash) => Promise<string>;
    let asked = 0;
    Object.defineProperty(ThreadHash.prototype, 'digest', {
      ...digestOf,
      value(this: ThreadHash) {
        if (asked++ === 0) original.call(ThreadHash.create('no-such-algorithm')).catch(() => {});
        return original.call(this);
      },
    });
    const digest = `sha256:${sha256(bytes)}`;
    const finished = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
    assert.is(asked, 1, 'the finish asked the thread for its digest');
    assert.is(finished.status, 201, 'the finish verifies the bytes it has');
    const pulled = await fetch(`${wharf.url}/v2/docker-local/app/blobs/${digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(bytes));
  } finally {
    Object.defineProperty(ThreadHash.prototype, 'digest', digestOf);
    await wharf.cleanup();
  }
});

test.run();
