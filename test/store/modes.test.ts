import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, tempDir } from '../helpers/server.js';

// The data directory holds every image and the metadata database, which holds password hashes:
// the directory is created 0750, the database and its -wal and -shm files are 0600.

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const local = { blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } };

test('a fresh data directory is 0750 and meta.db, -wal and -shm are 0600; a wider meta.db is tightened at start', async () => {
  const dataDir = join(await tempDir(), 'var', 'wharf');
  const options = { dataDir, storage: local };
  const first = await startWharf(options);
  try {
    await pushImage(first.url, 'docker-local/team/app', makeImage(), '1.0'); // the WAL has content
    assert.is(await modeOf(dataDir), 0o750);
    for (const file of ['meta.db', 'meta.db-wal', 'meta.db-shm']) assert.is(await modeOf(join(dataDir, file)), 0o600, file);
    await first.stop();
    await chmod(join(dataDir, 'meta.db'), 0o644);
    const second = await startWharf(options);
    await second.stop();
    assert.is(await modeOf(join(dataDir, 'meta.db')), 0o600, 'tightened');
  } finally {
    await first.cleanup();
  }
});

test.run();
