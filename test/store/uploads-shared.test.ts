import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDigest } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/oci/errors.js';
import { openStore, type Store } from '../../src/store/index.js';
import { localSessionLocks } from '../../src/store/session-locks.js';
import { tempDir } from '../helpers/server.js';

// One upload session continued by two processes serving one data directory (two workers): each
// catches its running hash up with only the chunks the other appended, and the session lock they
// share refuses a chunk while another is being received.

const owner = { repo: 'docker-local', name: 'team/app' };
let stores: Store[];
const reads: { store: number; from: number }[] = [];

test.before(async () => {
  const dataDir = await tempDir();
  const locks = localSessionLocks(); // the primary's, as both workers would reach it
  stores = [];
  for (const index of [0, 1]) {
    const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: index === 0, sessionLocks: locks });
    const read = store.blobs.sessions.read.bind(store.blobs.sessions);
    store.blobs.sessions.read = (uuid, from) => {
      reads.push({ store: index, from: from ?? 0 });
      return read(uuid, from);
    };
    stores.push(store);
  }
});
test.after(async () => { await Promise.all(stores.map((store) => store.close())); });

test('chunks alternate between processes; each hashes only what the other added; the blob verifies', async () => {
  const chunks = [randomBytes(300_000), randomBytes(200_000), randomBytes(100_000), randomBytes(50_000)];
  const whole = Buffer.concat(chunks);
  const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
  const { uuid } = await stores[0]!.uploads.start(owner);
  let offset = 0;
  for (const [i, chunk] of chunks.entries()) {
    const state = await stores[i % 2]!.uploads.append(owner, uuid, Readable.from([chunk]));
    offset += chunk.length;
    assert.is(state.size, offset);
  }
  const written = await stores[1]!.uploads.finish(owner, uuid, parseDigest(digest)!);
  assert.equal(written, { digest, size: whole.length });
  // Store 1 first met the session at 300,000 bytes (all of it new to it), then caught up from
  // 500,000 (chunk 2 came from store 0) before finishing: never a second read from the start.
  assert.equal(reads, [{ store: 1, from: 0 }, { store: 0, from: 300_000 }, { store: 1, from: 500_000 }]);
});

test('a chunk for a session another process is receiving into is refused with 416, and the session goes on', async () => {
  const { uuid } = await stores[0]!.uploads.start(owner);
  const slow = new PassThrough();
  const first = stores[0]!.uploads.append(owner, uuid, slow);
  slow.write(randomBytes(1000));
  const refused = await stores[1]!.uploads.append(owner, uuid, Readable.from([randomBytes(10)])).then(() => null, (error: unknown) => error);
  assert.instance(refused, RegistryError);
  assert.is((refused as RegistryError).status, 416);
  slow.end(randomBytes(24));
  assert.is((await first).size, 1024);
  assert.is((await stores[1]!.uploads.append(owner, uuid, Readable.from([randomBytes(10)]))).size, 1034);
});

test.run();
