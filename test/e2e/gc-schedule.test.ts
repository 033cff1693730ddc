import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { pushImage } from '../helpers/registry.js';
import { s3Keys, type S3Settings } from '../helpers/s3.js';
import { startWharf, testStorage, type TestServer } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';

// What the collector does without being asked: it runs every gc.interval, and it ends upload
// sessions nobody finished within uploads.expireAfter. The store's clock is moved instead of
// waiting for grace periods; the periodic run is awaited through the line it logs.

const hour = 3_600_000;

/** The names under which upload sessions keep their bytes: files in uploads/, or S3 keys. */
async function sessionFiles(server: TestServer): Promise<string[]> {
  const blobs = server.storage.blobs as S3Settings | undefined;
  if (blobs?.driver === 's3') return (await s3Keys(blobs)).filter((key) => key.includes('/uploads/'));
  return readdir(join(server.dataDir, 'uploads')).catch(() => []);
}

test('gc.interval: the server collects on its own and logs what it freed', async () => {
  let clock = Date.now();
  const log = logCollector();
  const wharf = await startWharf({ storage: await testStorage(), gc: { interval: '100ms' }, storageNow: () => clock, log: (line) => log.write(line) });
  try {
    const image = makeImage();
    await pushImage(wharf.url, 'docker-local/team/gone', image, '1');
    assert.is((await fetch(`${wharf.url}/v2/docker-local/team/gone/manifests/1`, { method: 'DELETE' })).status, 202);
    clock += 2 * hour; // past gc.grace: the next periodic run may take it
    await log.waitFor(/garbage collection: 1 manifests, 3 blobs/);
    const stored = await storedBlobs(wharf);
    for (const item of [image.config, ...image.layers]) assert.not.ok(stored.includes(item.digest), item.digest);
  } finally {
    await wharf.cleanup();
  }
});

for (const layout of ['default', 's3-postgres']) {
  test(`uploads.expireAfter (${layout}): a session left unfinished is ended by the next collection, its bytes gone`, async () => {
    let clock = Date.now();
    const wharf = await startWharf({ storage: await testStorage(layout), uploads: { expireAfter: '2h' }, storageNow: () => clock });
    try {
      const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
      const location = new URL(started.headers.get('location')!, wharf.url);
      assert.is((await fetch(location, { method: 'PATCH', body: Buffer.alloc(4096, 7) })).status, 202);
      clock += hour;
      assert.is((await wharf.collectGarbage()).uploads, 0, 'younger than uploads.expireAfter: kept');
      assert.is((await fetch(location)).status, 204);
      const uuidOf = location.pathname.split('/').at(-1)!;
      assert.ok((await sessionFiles(wharf)).some((name) => name.includes(uuidOf)), 'the session holds bytes');
      clock += 2 * hour;
      assert.is((await wharf.collectGarbage()).uploads, 1);
      const gone = await fetch(location);
      assert.is(gone.status, 404);
      assert.is(((await gone.json()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
      assert.is((await wharf.collectGarbage()).uploads, 0, 'nothing left to end');
      const uuid = location.pathname.split('/').at(-1)!;
      assert.not.ok((await sessionFiles(wharf)).some((name) => name.includes(uuid)), 'the session\'s bytes are gone');
    } finally {
      await wharf.cleanup();
    }
  });
}

test.run();
