import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseManifest } from '../../src/oci/manifest.js';
import { FreshReads } from '../../src/store/metadata/fresh-reads.js';
import { openMetadata } from '../../src/store/metadata/index.js';
import { watchCommits } from '../../src/store/metadata/wal-header.js';
import { exitOf } from '../helpers/children.js';
import { makeImage } from '../helpers/images.js';
import { tempDir } from '../helpers/server.js';

// Hot reads kept in memory while SQLite is unchanged, and how "unchanged" is known across processes.

/** Runs one statement on `path` from another process, as another worker or `wharf promote` would. */
async function commitElsewhere(path: string, statement: string, params: unknown[]): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import Database from 'better-sqlite3';
    const db = new Database(process.argv[1], { timeout: 5000 });
    db.prepare(process.argv[2]).run(...JSON.parse(process.argv[3]));
    db.close();`, path, statement, JSON.stringify(params)], { stdio: 'inherit', cwd: process.cwd() });
  assert.is(await exitOf(child), 0);
}

test('the WAL-index header says whether another process committed', async () => {
  const path = join(await tempDir(), 'meta.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v INTEGER)');
  const commits = watchCommits(path);
  try {
    assert.ok(commits.changed(), 'the first call knows nothing yet');
    assert.not.ok(commits.changed(), 'nothing committed since');
    db.prepare('SELECT COUNT(*) FROM t').get();
    assert.not.ok(commits.changed(), 'a read is no change');
    await commitElsewhere(path, 'INSERT INTO t VALUES (?)', [1]);
    assert.ok(commits.changed(), 'a commit by another process');
    assert.not.ok(commits.changed());
    db.prepare('INSERT INTO t VALUES (2)').run();
    assert.ok(commits.changed(), 'a commit by this process');
  } finally {
    commits.close();
    db.close();
  }
});

test('a kept answer is reused while nothing changed, and dropped at the next change', async () => {
  let changed = true;
  let reads = 0;
  const fresh = new FreshReads(() => changed);
  const read = async () => ({ n: ++reads });
  assert.equal(await fresh.get('k', read), { n: 1 });
  changed = false;
  assert.equal(await fresh.get('k', read), { n: 1 }, 'from memory');
  assert.is(reads, 1);
  assert.ok(Object.isFrozen(await fresh.get('k', read)), 'shared answers cannot be changed by one caller');
  changed = true;
  assert.equal(await fresh.get('k', read), { n: 2 }, 'read again after a change');
});

test('a read begun before a change is not kept after it', async () => {
  let changed = true;
  const fresh = new FreshReads(() => changed);
  let finishOld!: (value: string) => void;
  const old = fresh.get('tag', () => new Promise<string>((resolve) => { finishOld = resolve; }));
  changed = false;
  // A commit happens while the first read is in flight; the next request reads the new state.
  changed = true;
  assert.is(await fresh.get('tag', async () => 'new'), 'new');
  changed = false;
  finishOld('old');
  assert.is(await old, 'old', 'the caller that asked before the change gets what it read');
  assert.is(await fresh.get('tag', async () => 'read again'), 'new', 'later callers get the newer answer');
});

test('SQLite: a tag moved by another process is read anew by the next request', async () => {
  const path = join(await tempDir(), 'meta.db');
  const metadata = await openMetadata({ driver: 'sqlite', path });
  try {
    const [first, second] = [makeImage(), makeImage()];
    const image = { repo: 'docker-hub', name: 'library/alpine' };
    for (const made of [first, second]) {
      await metadata.manifests.cache({ ...image, manifest: parseManifest(made.manifest), content: made.manifest, tag: made === first ? '3' : null, now: 1000 });
    }
    assert.is((await metadata.tags.get(image, '3'))?.digest, first.digest);
    assert.is((await metadata.tags.get(image, '3'))?.digest, first.digest, 'kept');
    await commitElsewhere(path, 'UPDATE tags SET digest = ? WHERE repo = ? AND name = ? AND tag = ?', [second.digest, image.repo, image.name, '3']);
    assert.is((await metadata.tags.get(image, '3'))?.digest, second.digest);
    assert.is((await metadata.tags.getConfirmed(image, '3'))?.digest, second.digest);
  } finally {
    await metadata.close();
  }
});

test.run();
