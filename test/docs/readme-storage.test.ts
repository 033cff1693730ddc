import { execFile } from 'node:child_process';
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqlite } from '../../src/store/metadata/sqlite.js';
import { startWharf, tempDir } from '../helpers/server.js';

// README, "Storage and durability": the claims no other suite checked.

const run = promisify(execFile);

test('SQLite: WAL mode, and synchronous=FULL on the connection that writes, also when the file is opened again', async () => {
  const path = join(await tempDir(), 'meta.db');
  // better-sqlite3 builds SQLite with NORMAL as the default in WAL mode: a database opened again
  // (already in WAL mode) would get it unless Wharf asks for FULL itself.
  for (const round of ['created', 'opened again']) {
    const db = openSqlite(path);
    try {
      const [mode] = await db.transaction((sql) => sql.all<{ journal_mode: string }>('PRAGMA journal_mode'));
      const [sync] = await db.transaction((sql) => sql.all<{ synchronous: number }>('PRAGMA synchronous'));
      assert.is(mode!.journal_mode, 'wal', round);
      assert.is(sync!.synchronous, 2, `${round}: 2 is FULL`);
    } finally {
      await db.close();
    }
  }
});

/** Writes a file that leaves `leave` bytes free on the file system of `dir` (at most 1 MiB off). */
async function fillTo(dir: string, leave: number): Promise<string> {
  const file = join(dir, 'filler');
  const handle = await open(file, 'a');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (;;) {
      const { bavail, bsize } = await statfs(dir);
      const free = bavail * bsize;
      if (free <= leave) break;
      await handle.write(chunk, 0, Math.min(chunk.length, free - leave));
    }
  } finally {
    await handle.close();
  }
  return file;
}

test('storage health: not writable ("storage is full") below 16 MiB free, writable above', async () => {
  const mountPoint = await tempDir('wharf-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]);
  const wharf = await startWharf({ dataDir: join(mountPoint, 'data'), storage: {}, log: () => undefined });
  try {
    assert.equal(await wharf.storageHealth(), { writable: true });
    const filler = await fillTo(mountPoint, 20 << 20);
    assert.equal(await wharf.storageHealth(), { writable: true }, '20 MiB free');
    await fillTo(mountPoint, 12 << 20);
    assert.equal(await wharf.storageHealth(), { writable: false, reason: 'storage is full' }, '12 MiB free');
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 503);
    await rm(filler);
    assert.equal(await wharf.storageHealth(), { writable: true });
  } finally {
    await wharf.stop();
    await run('umount', [mountPoint]);
  }
});

test.run();
