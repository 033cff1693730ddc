import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../../src/config/validate.js';
import { collectPolicy, openConfiguredStore } from '../../src/storage.js';
import { collectGarbage } from '../../src/store/gc.js';
import { blob } from '../helpers/images.js';
import { pushBlob } from '../helpers/registry.js';
import { startWharf } from '../helpers/server.js';

// README, "Garbage collection": the collector works in batches of 200 rows.

test('the collector takes 200 rows a batch: 250 unused blobs go in batches of 200 and 50', async () => {
  const wharf = await startWharf();
  const count = 250;
  for (let i = 0; i < count; i++) await pushBlob(wharf.url, 'docker-local/team/loose', blob(randomBytes(32)));
  await wharf.stop();
  const config = validateConfig({ dataDir: wharf.dataDir, storage: wharf.storage, repositories: { 'docker-local': { type: 'local' } } }, { baseDir: process.cwd() });
  const store = await openConfiguredStore(config, { recover: false, now: () => Date.now() + 2 * 3_600_000 });
  const batches: number[] = [];
  let seen = 0;
  try {
    const summary = await collectGarbage(store, collectPolicy(config), {
      onProgress: (so, phase) => {
        if (phase !== 'blobs') return;
        batches.push(so.blobs - seen);
        seen = so.blobs;
      },
    });
    assert.is(summary.blobs, count);
    assert.equal(batches, [200, 50]);
  } finally {
    await store.close();
    await wharf.cleanup();
  }
});

test.run();
