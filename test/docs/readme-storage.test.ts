import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqlite } from '../../src/store/metadata/sqlite.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, makeImage } from '../helpers/images.js';
import { s3Keys, s3Storage } from '../helpers/s3.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, tempDir } from '../helpers/server.js';

// README, "Storage and durability": the claims no other suite checked.

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

test('manifest bytes are cached; a tag moved by another node is served moved at once (SQLite: the kept tag is dropped at the commit)', async () => {
  const a = await startWharf();
  // The same database and blobs: on SQLite and the filesystem, the same data directory.
  const b = await startWharf({ storage: a.storage, ...('metadata' in a.storage ? {} : { dataDir: a.dataDir }) });
  try {
    const first = makeImage();
    const second = makeImage();
    const digestOn = async (base: string) => (await fetch(`${base}/v2/docker-local/team/app/manifests/latest`, { headers: { Accept: OCI_MANIFEST } })).headers.get('docker-content-digest');
    await pushImage(a.url, 'docker-local/team/app', first, 'latest');
    assert.is(await digestOn(b.url), first.digest, 'B reads the tag (and caches the manifest)');
    await pushImage(a.url, 'docker-local/team/app', second, 'latest');
    assert.is(await digestOn(b.url), second.digest, 'B asks the database which digest the tag names');
  } finally {
    await b.stop();
    await a.cleanup();
  }
});

test('S3: each PATCH of a session is an object <prefix>/uploads/<uuid>/<offset, 16 digits> beside a .session marker; the finished blob is one object under <prefix>/blobs/', async () => {
  const blobs = await s3Storage({ prefix: 'team/registry' });
  const wharf = await startWharf({ storage: { blobs } });
  try {
    const item = blob(randomBytes(300_000));
    const start = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
    let location = new URL(start.headers.get('location')!, wharf.url);
    const uuid = /\/blobs\/uploads\/([^/?]+)/.exec(location.pathname)![1]!;
    for (const [from, to] of [[0, 100_000], [100_000, 300_000]] as const) {
      const patch = await fetch(location, { method: 'PATCH', body: item.bytes.subarray(from, to), headers: { 'Content-Range': `${from}-${to - 1}` } });
      assert.is(patch.status, 202);
      location = new URL(patch.headers.get('location')!, wharf.url);
    }
    assert.equal((await s3Keys(blobs)).filter((key) => key.includes('/uploads/')).sort(), [`team/registry/uploads/${uuid}/.session`, `team/registry/uploads/${uuid}/0000000000000000`, `team/registry/uploads/${uuid}/0000000000100000`]);
    location.searchParams.set('digest', item.digest);
    assert.is((await fetch(location, { method: 'PUT' })).status, 201);
    const hex = item.digest.slice('sha256:'.length);
    const keys = await s3Keys(blobs);
    assert.ok(keys.some((key) => key.startsWith('team/registry/blobs/') && key.endsWith(hex)), keys.join(' '));
    assert.equal(keys.filter((key) => key.includes('/uploads/')), [], 'the session\'s objects are gone');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
