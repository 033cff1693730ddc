import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalRepositoryConfig } from '../../src/config/types.js';
import { parseDigest } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/oci/errors.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { Promotion } from '../../src/repos/promotion.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { blob, makeImage, type Image } from '../helpers/images.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { s3Options, s3Storage } from '../helpers/s3.js';
import { tempDir } from '../helpers/server.js';

// Promotion against what changes between its plan and its transaction, forced: a tag pushed to
// the source of a whole-image move, and (PostgreSQL, where a collection or a push runs beside the
// transaction) a manifest the collector deletes while the promotion is about to link it, the
// source tag of a move pushed anew after the transaction checked it, and a target tag pushed
// then (overwriting it would need delete, which the caller was not asked for).

const local: LocalRepositoryConfig = { type: 'local', blockSchema1: true, gc: { untagged: 'delete' }, maxUniqueTags: 0, platformTags: false };
const repositories = { 'docker-local': local, 'docker-prod': local };
const source = { repo: 'docker-local', name: 'team/app' };
const target = { repo: 'docker-prod', name: 'team/app' };

const layouts: Record<string, () => Promise<Pick<StoreOptions, 'blobs' | 'metadata'>>> = {
  'sqlite + filesystem': async () => ({ blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } }),
  'postgres + s3': async () => ({ blobs: s3Options(await s3Storage()), metadata: { driver: 'postgres', url: await postgresDatabase() } }),
};

async function push(store: Store, image: Image, tag: string, at = source): Promise<void> {
  for (const item of [image.config, ...image.layers]) await store.lifecycle.write(at, Readable.from([item.bytes]), parseDigest(item.digest)!);
  const result = await store.metadata.manifests.push({ ...at, manifest: parseManifest(image.manifest), content: image.manifest, tag, now: store.now() });
  assert.equal(result.missing, []);
}

async function refusedWith(work: Promise<unknown>): Promise<number> {
  const error = await work.then(() => null, (caught: unknown) => caught);
  assert.instance(error, RegistryError);
  return (error as RegistryError).status;
}

const move = { repository: 'docker-local', image: 'team/app', targetRepository: 'docker-prod', targetImage: null, tag: null, targetTag: null, copy: false };

for (const [layoutName, layout] of Object.entries(layouts)) {
  const test = suite(`promotion on ${layoutName}`);
  let store: Store;
  test.before.each(async () => {
    store = await openStore({ dataDir: await tempDir(), ...(await layout()), recover: true, log: () => undefined });
  });
  test.after.each(async () => { await store.close(); });

  test('a whole-image move refuses (409) when a tag was pushed to the source after it was planned, and changes nothing', async () => {
    await push(store, makeImage(), '1.0');
    const promotion = new Promotion({ store, repositories });
    const plan = await promotion.plan(move);
    const late = makeImage();
    await push(store, late, '2.0');
    assert.is(await refusedWith(promotion.apply(plan)), 409);
    assert.is((await store.metadata.tags.get(source, '2.0'))?.digest, late.digest, 'the late tag stays');
    assert.ok(await store.metadata.tags.get(source, '1.0'), 'the planned tag stays too');
    assert.is(await store.metadata.tags.get(target, '1.0'), undefined);
    // Planned again, the move takes both.
    await promotion.apply(await promotion.plan(move));
    assert.equal((await store.metadata.tags.details(source)).map((row) => row.tag), []);
    assert.equal((await store.metadata.tags.details(target)).map((row) => row.tag).sort(), ['1.0', '2.0']);
  });

  test('a promotion refuses (409) when the target tag was pushed after it was planned, and changes nothing', async () => {
    await push(store, makeImage(), '1.0');
    const promotion = new Promotion({ store, repositories });
    const plan = await promotion.plan({ ...move, tag: '1.0', copy: true });
    assert.equal(plan.overwrites, [], 'planned: no overwrite');
    const late = makeImage();
    await push(store, late, '1.0', target);
    assert.is(await refusedWith(promotion.apply(plan)), 409);
    assert.is((await store.metadata.tags.get(target, '1.0'))?.digest, late.digest, 'the pushed target tag stays');
  });

  test('a target that blocks schema1 takes no schema1 manifest by promotion either (MANIFEST_INVALID), and nothing moves', async () => {
    const layer = blob(randomBytes(100));
    await store.lifecycle.write(source, Readable.from([layer.bytes]), parseDigest(layer.digest)!);
    const content = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'team/app', tag: 'old', architecture: 'amd64', fsLayers: [{ blobSum: layer.digest }], history: [{ v1Compatibility: '{}' }] }));
    assert.equal(await store.metadata.manifests.push({ ...source, manifest: parseManifest(content), content, tag: 'old', now: store.now() }), { missing: [], dropped: [] });
    const promotion = new Promotion({ store, repositories: { 'docker-local': { ...local, blockSchema1: false }, 'docker-prod': local } });
    const error = await promotion.apply(await promotion.plan({ ...move, tag: 'old', copy: true })).then(() => null, (caught: unknown) => caught);
    assert.instance(error, RegistryError);
    assert.is((error as RegistryError).code, 'MANIFEST_INVALID');
    assert.match((error as RegistryError).message, 'blocks them (blockSchema1)');
    assert.is(await store.metadata.tags.get(target, 'old'), undefined);
  });

  if (layoutName.startsWith('postgres')) {
    test('a manifest the collector deletes while the promotion is about to link it is not linked (409)', async () => {
      const image = makeImage();
      await push(store, image, '1.0');
      const promotion = new Promotion({
        store,
        repositories,
        // Beside the promotion's transaction: the source lets go of the manifest, the collector deletes its row.
        beforeLink: async () => {
          assert.ok(await store.metadata.manifests.unlink(source, image.digest));
          const swept = await store.metadata.collector.sweepOrphanManifests({ after: null, size: 100 });
          assert.is(swept.removed, 1);
        },
      });
      const copy = { ...move, tag: '1.0', copy: true };
      assert.is(await refusedWith(promotion.apply(await promotion.plan(copy))), 409);
      assert.is(await store.metadata.tags.get(target, '1.0'), undefined, 'no tag points at a deleted manifest');
    });

    test('a move refuses (409) when the source tag is pushed anew beside its transaction: the new push keeps its tag', async () => {
      await push(store, makeImage(), '1.0');
      const late = makeImage();
      const promotion = new Promotion({ store, repositories, beforeLink: () => push(store, late, '1.0') });
      assert.is(await refusedWith(promotion.apply(await promotion.plan({ ...move, tag: '1.0' }))), 409);
      assert.is((await store.metadata.tags.get(source, '1.0'))?.digest, late.digest, 'the source keeps the tag as pushed');
      assert.is(await store.metadata.tags.get(target, '1.0'), undefined, 'nothing moved');
    });

    test('a promotion refuses (409) when the target tag is pushed beside its transaction: the push is not overwritten', async () => {
      const image = makeImage();
      await push(store, image, '1.0');
      const late = makeImage();
      const promotion = new Promotion({ store, repositories, beforeLink: () => push(store, late, '1.0', target) });
      for (const request of [{ ...move, tag: '1.0', copy: true }, { ...move, tag: '1.0' }]) {
        assert.is(await refusedWith(promotion.apply(await promotion.plan(request))), 409, request.copy ? 'copy' : 'move');
        assert.is((await store.metadata.tags.get(target, '1.0'))?.digest, late.digest, 'the target keeps the tag as pushed');
        assert.is((await store.metadata.tags.get(source, '1.0'))?.digest, image.digest, 'the source is as it was');
        assert.ok(await store.metadata.tags.remove(target, '1.0'));
      }
    });

    test('a connection cut between two statements of its transaction fails the promotion (503 UNAVAILABLE); the process and the store go on', async () => {
      const url = await postgresDatabase();
      const own = await openStore({ dataDir: await tempDir(), blobs: s3Options(await s3Storage()), metadata: { driver: 'postgres', url }, recover: true, log: () => undefined });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await push(own, makeImage(), '1.0');
        const promotion = new Promotion({
          store: own,
          repositories,
          // The transaction's backend waits between two statements: it is terminated, and its end
          // reaches the client while no statement is running (before the fix, an uncaught 'error').
          beforeLink: async () => {
            const held = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'");
            assert.is(held.rows.length, 1);
            await admin.query('SELECT pg_terminate_backend($1)', [held.rows[0]!.pid]);
            for (let i = 0; i < 100 && (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [held.rows[0]!.pid])).rows.length > 0; i++);
            await new Promise((resolve) => setImmediate(resolve));
          },
        });
        const error = await promotion.apply(await promotion.plan({ ...move, tag: '1.0', copy: true })).then(() => null, (caught: unknown) => caught);
        assert.instance(error, RegistryError);
        assert.is((error as RegistryError).code, 'UNAVAILABLE');
        assert.is(await own.metadata.tags.get(target, '1.0'), undefined, 'nothing was promoted');
        assert.ok(await own.metadata.tags.get(source, '1.0'), 'the store answers on another connection');
      } finally {
        await admin.end();
        await own.close();
      }
    });
  }

  test.run();
}
