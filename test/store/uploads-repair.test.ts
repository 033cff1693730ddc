import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore, type StoreOptions } from '../../src/store/index.js';
import { startingGrace } from '../../src/store/uploads.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { s3Options, s3Storage } from '../helpers/s3.js';
import { tempDir } from '../helpers/server.js';

// Start-up repair on a store other nodes serve: a node starting a session writes its bytes (the
// S3 marker) before its row; a node that starts up in that instant must not take the bytes for
// a crash's leftovers. The instant is built exactly: the bytes of a session, then a repair, then
// the row.

const owner = { repo: 'docker-local', name: 'team/app' };

const layouts: Record<string, () => Promise<Pick<StoreOptions, 'dataDir' | 'blobs' | 'metadata'>>> = {
  'sqlite + filesystem': async () => ({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } }),
  'postgres + s3': async () => ({ dataDir: await tempDir(), blobs: s3Options(await s3Storage()), metadata: { driver: 'postgres', url: await postgresDatabase() } }),
};

for (const [layoutName, layout] of Object.entries(layouts)) {
  const test = suite(`upload repair on ${layoutName}`);

  test('a session being started on another node (bytes, no row yet) survives a start-up repair; bytes left without a row go once older than the grace', async () => {
    const storage = await layout();
    const starting = await openStore({ ...storage, recover: false, log: () => undefined });
    try {
      const uuid = randomUUID();
      await starting.blobs.sessions.create(uuid);
      // Another node starts up now, and again later, with the clock past the grace.
      const repairAt = async (now: number) => (await openStore({ ...storage, recover: true, now: () => now, log: () => undefined })).close();
      await repairAt(Date.now());
      await starting.metadata.uploads.create({ uuid, ...owner, started_at: Date.now() });
      assert.equal(await starting.uploads.status(owner, uuid), { uuid, size: 0 }, 'the session goes on');

      const abandoned = randomUUID();
      await starting.blobs.sessions.create(abandoned);
      await repairAt(Date.now() + startingGrace + 60_000);
      assert.is(await starting.blobs.sessions.size(abandoned), null, 'bytes without a row, older than the grace, are gone');
      assert.is(await starting.blobs.sessions.size(uuid), 0, 'the session with its row stays');
    } finally {
      await starting.close();
    }
  });

  test.run();
}
