import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { newHasher, parseDigest, type ParsedDigest } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/oci/errors.js';
import { FilesystemBlobs } from '../../src/store/blobs/filesystem.js';
import { ThreadHash } from '../../src/store/blobs/hash-thread.js';
import { S3Blobs } from '../../src/store/blobs/s3.js';
import type { BlobDriver } from '../../src/store/blobs/types.js';
import { s3Options, s3Storage } from '../helpers/s3.js';
import { tempDir } from '../helpers/server.js';

// The blob driver conformance suite (Distribution's storagedriver/testsuites is the model): every
// case runs on the filesystem driver and on the S3 driver (against s3rver).

const drivers: Record<string, () => Promise<{ driver: BlobDriver; tmp: string }>> = {
  filesystem: async () => {
    const dir = await tempDir();
    const driver = new FilesystemBlobs(dir);
    await driver.prepare({ recover: true });
    return { driver, tmp: join(dir, 'tmp') };
  },
  s3: async () => {
    const tmp = join(await tempDir(), 'tmp');
    const driver = await S3Blobs.open({ ...s3Options(await s3Storage()), tmpDir: tmp });
    await driver.prepare({ recover: true });
    return { driver, tmp };
  },
};

function digestOf(bytes: Buffer): ParsedDigest {
  return parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`)!;
}

async function rejects(promise: Promise<unknown>): Promise<void> {
  let failed = false;
  await promise.catch(() => { failed = true; });
  assert.ok(failed, 'expected a failure');
}

const name = (parsed: ParsedDigest) => `${parsed.algorithm}:${parsed.hex}`;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function put(driver: BlobDriver, bytes: Buffer): Promise<ParsedDigest> {
  const writer = driver.writer();
  await pipeline(Readable.from([bytes]), writer);
  const digest = digestOf(bytes);
  await writer.commit(digest);
  return digest;
}

/** A source that sends `bytes` and then fails, as a client cut off mid-upload. */
function failingSource(bytes: Buffer): Readable {
  return Readable.from((async function* () {
    yield bytes;
    throw new Error('connection reset');
  })());
}

for (const [driverName, open] of Object.entries(drivers)) {
  const test = suite(`blob driver: ${driverName}`);
  let driver: BlobDriver;
  let tmp: string;
  test.before.each(async () => { ({ driver, tmp } = await open()); });
  test.after.each(async () => { await driver.close(); });

  test('a committed blob: stat, whole read, first byte, last byte, middle', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const digest = await put(driver, bytes);
    const stat = await driver.stat(name(digest));
    assert.is(stat?.size, bytes.length);
    assert.ok(stat && Math.abs(stat.modifiedAt - Date.now()) < 60_000, 'last-modified is now');
    assert.ok((await collect(await driver.read(name(digest)))).equals(bytes), 'whole');
    assert.ok((await collect(await driver.read(name(digest), { start: 0, end: 0 }))).equals(bytes.subarray(0, 1)), 'first byte');
    const last = bytes.length - 1;
    assert.ok((await collect(await driver.read(name(digest), { start: last, end: last }))).equals(bytes.subarray(last)), 'last byte');
    assert.ok((await collect(await driver.read(name(digest), { start: 1_000_000, end: 2_500_000 }))).equals(bytes.subarray(1_000_000, 2_500_001)), 'middle');
    assert.ok((await collect(await driver.read(name(digest), { start: 0, end: last }))).equals(bytes), 'whole as a range');
  });

  test('the empty blob', async () => {
    const digest = await put(driver, Buffer.alloc(0));
    assert.is((await driver.stat(name(digest)))?.size, 0);
    assert.is((await collect(await driver.read(name(digest)))).length, 0);
    assert.is((await collect(await driver.read(name(digest), { start: 0, end: -1 }))).length, 0);
  });

  test('a missing blob is BLOB_UNKNOWN before any byte; stat says null', async () => {
    const digest = name(digestOf(randomBytes(10)));
    assert.is(await driver.stat(digest), null);
    try {
      await driver.read(digest);
      assert.unreachable('read a missing blob');
    } catch (error) {
      assert.instance(error, RegistryError);
      assert.is((error as RegistryError).code, 'BLOB_UNKNOWN');
    }
  });

  test('concurrent writes of the same digest both succeed and leave one correct blob', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const [a, b] = await Promise.all([put(driver, bytes), put(driver, bytes)]);
    assert.equal(a, b);
    assert.ok((await collect(await driver.read(name(a)))).equals(bytes));
    const listed = [];
    for await (const blob of driver.list()) listed.push(blob.digest);
    assert.equal(listed, [name(a)]);
  });

  test('cancel, a source that fails mid-write, a digest mismatch: nothing visible, nothing left in tmp', async () => {
    const bytes = randomBytes(1024 * 1024);
    const cancelled = driver.writer();
    await pipeline(Readable.from([bytes]), cancelled);
    await cancelled.cancel();
    const broken = driver.writer();
    await rejects(pipeline(failingSource(bytes), broken));
    await broken.cancel();
    const wrong = driver.writer();
    await pipeline(Readable.from([bytes]), wrong);
    const claimed = digestOf(randomBytes(8));
    try {
      await wrong.commit(claimed);
      assert.unreachable('committed under the wrong digest');
    } catch (error) {
      assert.is((error as RegistryError).code, 'DIGEST_INVALID');
    }
    assert.is(await driver.stat(name(digestOf(bytes))), null);
    assert.is(await driver.stat(name(claimed)), null);
    assert.equal(await readdir(tmp), []);
  });

  test('a writer that failed after accepting bytes never commits: its file lacks what it hashed', async () => {
    const bytes = randomBytes(256 * 1024);
    const writer = driver.writer();
    writer.on('error', () => undefined);
    writer.write(bytes);
    writer.destroy(new Error('the disk failed'));
    await new Promise((resolve) => writer.once('close', resolve));
    await rejects(writer.commit(digestOf(bytes)));
    assert.is(await driver.stat(name(digestOf(bytes))), null);
    await writer.cancel();
    assert.equal(await readdir(tmp), []);
  });

  test('a writer whose process dies is never visible; start-up recovery empties tmp', async () => {
    const bytes = randomBytes(512 * 1024);
    const orphan = driver.writer();
    orphan.write(bytes.subarray(0, 100_000));
    await new Promise((resolve) => orphan.once('ready', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // No commit, no cancel: as if the process had been killed here.
    assert.is(await driver.stat(name(digestOf(bytes))), null);
    assert.ok((await readdir(tmp)).length > 0);
    await driver.prepare({ recover: true });
    assert.equal(await readdir(tmp), []);
    orphan.destroy();
  });

  test('readers follow a write: bytes written so far, then null once committed', async () => {
    const bytes = randomBytes(64 * 1024);
    const writer = driver.writer();
    await pipeline(Readable.from([bytes]), writer);
    assert.ok((await writer.readWritten(1000, 2000))?.equals(bytes.subarray(1000, 3000)));
    await writer.commit(digestOf(bytes));
    assert.is(await writer.readWritten(0, 10), null);
  });

  test('delete, and iterate with last-modified', async () => {
    const kept = await put(driver, randomBytes(100));
    const gone = await put(driver, randomBytes(200));
    await driver.delete(name(gone));
    assert.is(await driver.stat(name(gone)), null);
    const listed = [];
    for await (const blob of driver.list()) listed.push(blob);
    assert.equal(listed.map((blob) => [blob.digest, blob.size]), [[name(kept), 100]]);
    assert.ok(listed[0]!.modifiedAt > Date.now() - 60_000);
  });

  test('upload sessions: chunks append, a failed chunk leaves nothing, the hash rebuilds, commit makes the blob', async () => {
    const sessions = driver.sessions;
    const bytes = randomBytes(3 * 1024 * 1024);
    await sessions.create('s1');
    assert.is(await sessions.size('s1'), 0);
    const hash = ThreadHash.create();
    let size = await sessions.append('s1', 0, Readable.from([bytes.subarray(0, 1024 * 1024)]), hash);
    assert.is(size, 1024 * 1024);
    await rejects(sessions.append('s1', size, failingSource(bytes.subarray(size, size + 1000)), ThreadHash.create()));
    assert.is(await sessions.size('s1'), size, 'the failed chunk left nothing');
    size = await sessions.append('s1', size, Readable.from([bytes.subarray(size)]), hash);
    assert.is(await sessions.size('s1'), bytes.length);
    const rebuilt = newHasher();
    for await (const chunk of await sessions.read('s1')) rebuilt.update(chunk as Buffer);
    assert.is(rebuilt.digest('hex'), await hash.digest());
    const listed = [];
    for await (const session of sessions.list()) listed.push(session.uuid);
    assert.equal(listed, ['s1']);
    const digest = digestOf(bytes);
    await sessions.commit('s1', digest);
    assert.is(await sessions.size('s1'), null);
    assert.ok((await collect(await driver.read(name(digest)))).equals(bytes));
    await sessions.create('s2');
    await sessions.delete('s2');
    assert.is(await sessions.size('s2'), null);
  });

  test.run();
}
