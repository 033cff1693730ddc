import { join } from 'node:path';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseManifest } from '../../src/oci/manifest.js';
import { openMetadata, type Metadata, type MetadataOptions } from '../../src/store/metadata/index.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/server.js';

// The metadata conformance suite: every case runs on SQLite and on PostgreSQL.

const drivers: Record<string, () => Promise<MetadataOptions>> = {
  sqlite: async () => ({ driver: 'sqlite', path: join(await tempDir(), 'meta.db') }),
  postgres: async () => ({ driver: 'postgres', url: await postgresDatabase() }),
};

const image = { repo: 'docker-local', name: 'team/app' };
/** One window over everything (the test databases are small). */
const all = { after: null, size: 1000 };

/** Links an image's blobs the way the store's lifecycle does. */
async function linkBlobs(metadata: Metadata, target: typeof image, made: ReturnType<typeof makeImage>, now = 1000): Promise<void> {
  for (const item of [made.config, ...made.layers]) {
    assert.is(await metadata.blobs.claim(item.digest, item.bytes.length, now), 'claimed');
    assert.ok(await metadata.blobs.link(target, item.digest, item.bytes.length, now));
  }
}

function put(made: ReturnType<typeof makeImage>, tag: string | null, now = 1000) {
  return { ...image, manifest: parseManifest(made.manifest), content: made.manifest, tag, now };
}

for (const [driver, options] of Object.entries(drivers)) {
  const test = suite(`metadata on ${driver}`);
  let metadata: Metadata;
  test.before.each(async () => { metadata = await openMetadata(await options()); });
  test.after.each(async () => { await metadata.close(); });

  test('a local push needs every blob in the image, and then stores manifest, link and tag in one step', async () => {
    const made = makeImage({ layers: 2 });
    const refused = await metadata.manifests.push(put(made, '1.0'));
    assert.equal(refused.missing.sort(), [made.config.digest, ...made.layers.map((l) => l.digest)].sort());
    assert.is((await metadata.tags.get(image, '1.0'))?.digest, undefined);
    assert.not.ok(await metadata.images.exists(image));
    await linkBlobs(metadata, image, made);
    assert.equal(await metadata.manifests.push(put(made, '1.0')), { missing: [], dropped: [] });
    assert.is((await metadata.tags.get(image, '1.0'))?.digest, made.digest);
    const row = await metadata.manifests.inImage(image, made.digest);
    assert.ok(row?.content.equals(made.manifest));
    assert.is(row?.size, made.manifest.length);
    assert.is(await metadata.manifests.inImage({ ...image, name: 'other' }, made.digest), undefined);
    assert.equal(await metadata.images.list('docker-local', { n: 10 }), ['team/app']);
    assert.equal(await metadata.tags.list(image, { n: 10 }), ['1.0']);
    assert.is((await metadata.tags.getConfirmed(image, '1.0'))?.confirmed_at, null, 'a local tag has no upstream confirmation');
  });

  test('a cache fill stores without references and records when the upstream confirmed the tag', async () => {
    const made = makeImage();
    const remote = { repo: 'docker-hub', name: 'library/alpine' };
    await metadata.manifests.cache({ ...remote, manifest: parseManifest(made.manifest), content: made.manifest, tag: '3', now: 5000 });
    assert.is((await metadata.tags.get(remote, '3'))?.digest, made.digest);
    assert.equal(await metadata.tags.getConfirmed(remote, '3'), { digest: made.digest, pushed_at: 5000, confirmed_at: 5000 });
    await metadata.tags.confirm(remote, '3', 9000);
    assert.is((await metadata.tags.getConfirmed(remote, '3'))?.confirmed_at, 9000);
    assert.ok(await metadata.tags.remove(remote, '3'));
    assert.is(await metadata.tags.getConfirmed(remote, '3'), undefined);
    // The confirmation went with the tag: set again (not by a fill), it is unconfirmed.
    await metadata.tags.set(remote, '3', made.digest, 9500, { platformTags: [], maxUniqueTags: 0 });
    assert.equal(await metadata.tags.getConfirmed(remote, '3'), { digest: made.digest, pushed_at: 9500, confirmed_at: null });
  });

  test('deleting a tag, a manifest, an image', async () => {
    const made = makeImage();
    await linkBlobs(metadata, image, made);
    await metadata.manifests.push(put(made, 'a'));
    await metadata.manifests.push(put(made, 'b'));
    assert.ok(await metadata.tags.remove(image, 'a'));
    assert.not.ok(await metadata.tags.remove(image, 'a'));
    assert.equal(await metadata.tags.list(image, { n: 10 }), ['b']);
    assert.ok(await metadata.manifests.unlink(image, made.digest));
    assert.equal(await metadata.tags.list(image, { n: 10 }), [], 'tags of the manifest go with it');
    assert.not.ok(await metadata.images.exists(image));
    await metadata.manifests.push(put(made, 'c'));
    assert.ok(await metadata.images.remove(image));
    assert.equal(await metadata.images.list('docker-local', { n: 10 }), []);
    assert.is(await metadata.blobLinks.size(image, made.config.digest), null, 'blob links go with the image');
    assert.not.ok(await metadata.images.remove(image));
  });

  test('blob links: sizes, bytes per repository, least recently pulled, who references a blob', async () => {
    const made = makeImage({ layers: 2 });
    await linkBlobs(metadata, image, made);
    const [first, second] = made.layers as [typeof made.layers[0], typeof made.layers[0]];
    assert.is(await metadata.blobLinks.size(image, first.digest), first.bytes.length);
    assert.is(await metadata.blobLinks.sizeInRepository('docker-local', first.digest), first.bytes.length);
    assert.is(await metadata.blobLinks.sizeInRepository('other', first.digest), null);
    const total = [made.config, ...made.layers].reduce((sum, item) => sum + item.bytes.length, 0);
    assert.is(await metadata.blobLinks.repositoryBytes('docker-local'), total);
    metadata.pulls.note('blob', image, made.config.digest);
    metadata.pulls.note('blob', image, first.digest);
    await metadata.pulls.flush();
    assert.is((await metadata.blobLinks.leastRecentlyPulled('docker-local', 1))[0]?.digest, second.digest, 'never pulled: oldest');
    await metadata.manifests.push(put(made, 'v1'));
    assert.equal(await metadata.blobLinks.referencedBy(image, first.digest), [{ digest: made.digest, tag: 'v1' }]);
    assert.ok(await metadata.blobLinks.unlink(image, first.digest));
    assert.is(await metadata.blobLinks.size(image, first.digest), null);
  });

  test('a flush waits for a write begun before it (the timer\'s): what was noted is in the database when it resolves', async () => {
    const made = makeImage({ layers: 1 });
    const layer = made.layers[0]!;
    // Linked first, the config is the least recently pulled until its pull is written.
    for (const [item, at] of [[made.config, 500], [layer, 1000]] as const) {
      assert.is(await metadata.blobs.claim(item.digest, item.bytes.length, at), 'claimed');
      assert.ok(await metadata.blobs.link(image, item.digest, item.bytes.length, at));
    }
    metadata.pulls.note('blob', image, made.config.digest);
    const first = metadata.pulls.flush(); // as the timer does, not awaited
    await metadata.pulls.flush(); // nothing noted since: the collector's flush before it sweeps
    const [oldest] = await metadata.blobLinks.leastRecentlyPulled('docker-local', 1);
    assert.is(oldest?.digest, layer.digest, 'the pulled config is no longer the least recently pulled');
    await first;
  });

  test('the blobs registry: claim inserts or touches; a row being deleted is neither claimed nor linked', async () => {
    const digest = makeImage().config.digest;
    assert.is(await metadata.blobs.claim(digest, 10, 100), 'claimed');
    assert.equal(await metadata.blobs.get(digest), { digest, size: 10, state: 'present', touched_at: 100 });
    assert.is(await metadata.blobs.claim(digest, 10, 200), 'claimed');
    assert.is((await metadata.blobs.get(digest))?.touched_at, 200);
    assert.is(await metadata.collector.lease('host:1:run', 300, 1000), null);
    const { marked } = await metadata.collector.markUnusedBlobs(300, all);
    assert.equal(marked.map((row) => row.digest), [digest]);
    assert.is(await metadata.blobs.claim(digest, 10, 400), 'deleting');
    assert.not.ok(await metadata.blobs.link(image, digest, 10, 400));
    await metadata.collector.forget([digest]);
    await metadata.collector.release('host:1:run');
    assert.is(await metadata.blobs.get(digest), undefined);
    assert.is(await metadata.blobs.claim(digest, 10, 500), 'claimed');
  });

  test('upload sessions: created, marked committing, listed by age, removed', async () => {
    await metadata.uploads.create({ uuid: 'u1', repo: 'docker-local', name: 'app', started_at: 10 });
    await metadata.uploads.create({ uuid: 'u2', repo: 'docker-local', name: 'app', started_at: 20 });
    await metadata.uploads.committing('u1', 'sha256:ab');
    assert.equal(await metadata.uploads.get('u1'), { uuid: 'u1', repo: 'docker-local', name: 'app', started_at: 10, committing: 'sha256:ab' });
    assert.equal((await metadata.uploads.startedBefore(15, 10)).map((row) => row.uuid), ['u1']);
    await metadata.uploads.remove('u1');
    assert.equal((await metadata.uploads.all()).map((row) => row.uuid), ['u2']);
  });

  test('a transaction is all or nothing, and nobody outside sees it before it commits', async () => {
    const made = makeImage();
    await linkBlobs(metadata, image, made);
    await metadata.transaction(async (tx) => {
      await tx.manifests.push(put(made, 'gone'));
      throw new Error('rolled back');
    }).catch(() => undefined);
    assert.is((await metadata.tags.get(image, 'gone'))?.digest, undefined);
    let release!: () => void;
    const barrier = new Promise<void>((resolve) => { release = resolve; });
    let inside!: () => void;
    const reached = new Promise<void>((resolve) => { inside = resolve; });
    const writing = metadata.transaction(async (tx) => {
      await tx.manifests.push(put(made, 'later'));
      assert.is((await tx.tags.get(image, 'later'))?.digest, made.digest, 'the transaction sees its own write');
      inside();
      await barrier;
    });
    await reached;
    assert.is((await metadata.tags.get(image, 'later'))?.digest, undefined, 'uncommitted writes are invisible outside');
    release();
    await writing;
    assert.is((await metadata.tags.get(image, 'later'))?.digest, made.digest);
  });

  test('the collector removes untagged manifests, then unreferenced links, then unused blobs; the lease admits one collector', async () => {
    const kept = makeImage();
    const dropped = makeImage();
    await linkBlobs(metadata, image, kept);
    await linkBlobs(metadata, image, dropped);
    await metadata.manifests.push(put(kept, 'keep'));
    await metadata.manifests.push(put(dropped, 'drop'));
    await metadata.tags.remove(image, 'drop');
    assert.equal(await metadata.collector.sweepUntaggedManifests('docker-local', 500, all), { removed: 0, next: null }, 'within the grace period');
    assert.equal(await metadata.collector.sweepUntaggedManifests('docker-local', 2000, all), { removed: 1, next: null });
    assert.is(await metadata.manifests.inImage(image, dropped.digest), undefined);
    assert.ok(await metadata.manifests.inImage(image, kept.digest));
    assert.is((await metadata.collector.sweepOrphanManifests(all)).removed, 1);
    // Windows of two rows: the sweep goes on where the last window ended, to the end.
    let removed = 0;
    let after: string[] | null = null;
    do {
      const swept: { removed: number; next: string[] | null } = await metadata.collector.sweepUnreferencedLinks('docker-local', 2000, { after, size: 2 });
      removed += swept.removed;
      after = swept.next;
    } while (after);
    assert.is(removed, 1 + dropped.layers.length);
    const { marked } = await metadata.collector.markUnusedBlobs(2000, all);
    assert.equal(marked.map((row) => row.digest).sort(), [dropped.config.digest, ...dropped.layers.map((l) => l.digest)].sort());
    assert.equal(await metadata.collector.deleting(10), marked.sort((a, b) => (a.digest < b.digest ? -1 : 1)));
    assert.is(await metadata.collector.lease('a', 0, 100), null);
    assert.is(await metadata.collector.lease('b', 50, 150), 'a');
    assert.is(await metadata.collector.lease('b', 50, 150, 'a'), null, 'taken over from a dead holder');
    assert.is(await metadata.collector.lease('c', 200, 300), null, 'an expired lease is free');
    await metadata.collector.release('c');
    assert.is(await metadata.collector.lease('d', 200, 300), null);
  });

  test('login attempts: counted per (user, address) and per address within the window; a success clears its pair', async () => {
    const limits = { perUser: 2, perAddress: 3, windowMs: 60_000 };
    const attempt = (user: string, now: number) => metadata.loginAttempts.reserve({ user, address: '10.0.0.1', now }, limits);
    const first = await attempt('eve', 1000);
    assert.ok('id' in first);
    assert.ok('id' in (await attempt('eve', 2000)));
    assert.equal(await attempt('eve', 3000), { freedAt: 61_000 }, 'the pair is at its limit until its first attempt leaves the window');
    assert.ok('id' in (await attempt('carl', 3000)), 'the refusal counted nothing: the address had 2 of 3');
    assert.equal(await attempt('dave', 4000), { freedAt: 61_000 });
    assert.ok('id' in (await attempt('eve', 61_001)), 'the first attempt left the window');
    const good = await attempt('carl', 62_001);
    assert.ok('id' in good);
    await metadata.loginAttempts.succeeded({ id: good.id, user: 'carl', address: '10.0.0.1' });
    assert.ok('id' in (await attempt('carl', 62_002)), 'the success does not count for the address');
    assert.equal(await attempt('carl', 62_003), { freedAt: 63_000 }, 'the address counts carl at 3000 (its pair cleared), eve at 61001 and carl at 62002');
  });

  test('opening an existing database again applies no migration twice', async () => {
    const made = makeImage();
    const opened = await options();
    const first = await openMetadata(opened);
    await linkBlobs(first, image, made);
    await first.manifests.push(put(made, 'x'));
    await first.close();
    const again = await openMetadata(opened);
    assert.is((await again.tags.get(image, 'x'))?.digest, made.digest);
    await again.close();
  });

  test.run();
}

// Several nodes share one PostgreSQL; SQLite's processes start after the primary migrated.
const shared = suite('metadata on one PostgreSQL shared by several nodes');

shared('several nodes opening one empty database at once migrate it once, none failing', async () => {
  // A race, not a certainty: without the lock, about every second round of four failed.
  for (let round = 0; round < 6; round++) {
    const url = await postgresDatabase();
    const nodes = await Promise.all([1, 2, 3, 4].map(() => openMetadata({ driver: 'postgres', url })));
    assert.is(await nodes[0]!.tags.get(image, 'x'), undefined, 'a working database');
    await Promise.all(nodes.map((node) => node.close()));
  }
});

shared('a node that starts while another applies a migration waits for it past timeouts.response, and starts', async () => {
  const url = await postgresDatabase();
  const [other, watch] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
  await Promise.all([other.connect(), watch.connect()]);
  try {
    // Another node in the middle of a migration (a big index, say): it holds the migrations' lock.
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock(7297810)');
    let settled = false;
    const opening = openMetadata({ driver: 'postgres', url, timeouts: { connect: 10_000, response: 300 } }).finally(() => { settled = true; });
    opening.catch(() => undefined);
    // Its wait has outlasted the response timeout three times over (as the server sees it: asked
    // outside a transaction, which would see one snapshot of pg_stat_activity), or it gave up.
    await eventually('the node waited on the migrations\' lock for more than 900 ms', async () => settled || (await watch.query(
      "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND clock_timestamp() - query_start > interval '900 milliseconds'",
    )).rowCount === 1);
    assert.not.ok(settled, 'start-up gave up while another node was migrating');
    await other.query('COMMIT');
    const node = await opening;
    assert.is(await node.tags.get(image, 'x'), undefined, 'a working database');
    await node.close();
  } finally {
    await Promise.all([other.end(), watch.end()]);
  }
});

shared.run();
