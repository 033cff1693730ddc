import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FilesystemSessions } from '../../src/store/blobs/fs-sessions.js';
import { ThreadHash } from '../../src/store/blobs/hash-thread.js';
import { datasyncPath, Writeback } from '../../src/store/blobs/writeback.js';
import { parseDigest } from '../../src/oci/digest.js';
import { openStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/server.js';

// Upload sessions start their disk writeback while the upload goes on (a background sync each
// time the session crosses a multiple of the interval), so the fsync before a push is
// acknowledged has little left to write. The syncs are held here by the test, to show that
// none is awaited by the PATCH and that two never run at once.

const mib = 1 << 20;

/** A sync the test releases; records the session's size on disk as each one is called. */
function heldSyncs() {
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const sync = (path: string) => {
    started.push(statSync(path).size); // when the writer calls it, not a turn later
    return new Promise<void>((resolve) => releases.push(resolve));
  };
  return { started, sync, releaseAll: () => releases.splice(0).forEach((release) => release()) };
}

function body(bytes: number): { stream: Readable; content: Buffer } {
  const chunks = Array.from({ length: bytes / (64 << 10) }, () => randomBytes(64 << 10));
  return { stream: Readable.from(chunks), content: Buffer.concat(chunks) };
}

async function sessions(writeback: Writeback): Promise<{ sessions: FilesystemSessions; path: (uuid: string) => string }> {
  const dir = join(await tempDir(), 'uploads');
  const sessions = new FilesystemSessions({ dir, place: async () => undefined, writeback });
  await sessions.prepare();
  return { sessions, path: (uuid) => join(dir, uuid) };
}

/** Resolves once `check` holds, polling each turn of the event loop; fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a session is synced in the background as it crosses each interval, one sync at a time, none awaited by the PATCH', async () => {
  const held = heldSyncs();
  const { sessions: store, path } = await sessions(new Writeback({ everyBytes: 4 * mib, sync: held.sync }));
  await store.create('s1');

  // 512 KiB: below the first multiple, no sync.
  const first = body(mib / 2);
  assert.is(await store.append('s1', 0, first.stream, ThreadHash.create()), mib / 2);
  assert.equal(held.started, []);

  // Up to 12.5 MiB: crosses 4, 8 and 12 MiB, but the sync started at 4 MiB is still held, so no second one starts.
  const second = body(12 * mib);
  assert.is(await store.append('s1', mib / 2, second.stream, ThreadHash.create()), 12.5 * mib); // answered while the sync is held
  assert.is(held.started.length, 1);
  assert.ok(held.started[0]! >= 4 * mib && held.started[0]! < 12.5 * mib, `first sync at ${held.started[0]} bytes`);

  // settle() (what a finish awaits before its metadata write) waits for the sync in flight.
  let settled = false;
  const settling = store.settle('s1').then(() => { settled = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(settled, false);

  // Released, the next crossing (16 MiB) starts the next sync.
  held.releaseAll();
  await settling;
  const third = body(4 * mib);
  assert.is(await store.append('s1', 12.5 * mib, third.stream, ThreadHash.create()), 16.5 * mib);
  assert.is(held.started.length, 2);
  assert.ok(held.started[1]! >= 16 * mib, `second sync at ${held.started[1]} bytes`);
  held.releaseAll();

  assert.ok((await readFile(path('s1'))).equals(Buffer.concat([first.content, second.content, third.content])));
});

test('a finish writes its metadata only once the background sync of its session is done', async () => {
  const store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true });
  try {
    const sessions = store.blobs.sessions;
    let release!: () => void;
    const settling: string[] = [];
    sessions.settle = (uuid) => { // held as a slow sync would hold it
      settling.push(uuid);
      return new Promise((resolve) => { release = resolve; });
    };
    const owner = { repo: 'docker-local', name: 'team/app' };
    const { uuid } = await store.uploads.start(owner);
    const { stream, content } = body(mib);
    await store.uploads.append(owner, uuid, stream);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    const finishing = store.uploads.finish(owner, uuid, parseDigest(digest)!);
    await until(() => settling.length === 1, 'the finish to settle the session');
    assert.is((await store.metadata.uploads.get(uuid))?.committing, null);
    assert.is(await store.blobs.stat(digest), null);
    release();
    assert.equal(await finishing, { digest, size: mib });
  } finally {
    await store.close();
  }
});

test('each session has its own sync in flight', async () => {
  const held = heldSyncs();
  const { sessions: store } = await sessions(new Writeback({ everyBytes: mib, sync: held.sync }));
  for (const uuid of ['a', 'b']) {
    await store.create(uuid);
    await store.append(uuid, 0, body(2 * mib).stream, ThreadHash.create());
  }
  assert.is(held.started.length, 2);
  held.releaseAll();
});

test('a sync that fails (the session was committed away first) is dropped, and the next crossing syncs again', async () => {
  let removed!: () => void;
  const gone = new Promise<void>((resolve) => { removed = resolve; });
  const outcomes: string[] = [];
  const sync = async (path: string) => {
    await gone;
    await datasyncPath(path).then(() => outcomes.push('synced'), (error: NodeJS.ErrnoException) => {
      outcomes.push(error.code ?? 'error');
      throw error;
    });
  };
  const { sessions: store, path } = await sessions(new Writeback({ everyBytes: mib, sync }));
  await store.create('s');
  await store.append('s', 0, body(2 * mib).stream, ThreadHash.create());
  await rm(path('s')); // as a commit renames it away before the background sync opens it
  removed();
  await until(() => outcomes.length === 1, 'the failed sync');
  assert.equal(outcomes, ['ENOENT']);

  await store.create('s');
  await store.append('s', 0, body(2 * mib).stream, ThreadHash.create());
  await until(() => outcomes.length === 2, 'the next sync');
  assert.equal(outcomes, ['ENOENT', 'synced']);
});

test.run();
