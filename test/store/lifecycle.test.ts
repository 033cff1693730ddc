import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDigest } from '../../src/oci/digest.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { collectGarbage, type CollectPolicy } from '../../src/store/gc.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { blob, makeImage } from '../helpers/images.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { s3Options, s3Storage } from '../helpers/s3.js';
import { tempDir } from '../helpers/server.js';

// The eviction-versus-push race, forced: a local push finds the blob a remote cache holds, and
// stops (a barrier in the lifecycle) between "the bytes are already here" and "link"; meanwhile
// the cache evicts the blob and the collector runs; then the push goes on. Before the lifecycle,
// eviction deleted the file there and the pushed tag pointed at missing bytes.

const hour = 3_600_000;
const policy: CollectPolicy = { grace: hour, uploadsExpireAfter: 24 * hour, localRepositories: ['docker-local'], untaggedRepositories: ['docker-local'] };
const local = { repo: 'docker-local', name: 'team/app' };
const remote = { repo: 'docker-hub', name: 'library/base' };
/** A collector's lease owner, as collectGarbage names itself (host:pid:run). */
const collector = 'test-host:1:run';

const layouts: Record<string, () => Promise<Pick<StoreOptions, 'blobs' | 'metadata'>>> = {
  'sqlite + filesystem': async () => ({ blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } }),
  'postgres + s3': async () => ({ blobs: s3Options(await s3Storage()), metadata: { driver: 'postgres', url: await postgresDatabase() } }),
};

async function readAll(store: Store, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.blobs.read(digest)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

for (const [layoutName, layout] of Object.entries(layouts)) {
  const test = suite(`blob lifecycle on ${layoutName}`);
  let store: Store;
  let clock = 0;
  let paused: { digest: string; resume: () => void } | null = null;
  let arrived: (() => void) | null = null;
  test.before.each(async () => {
    clock = Date.now();
    store = await openStore({
      dataDir: await tempDir(), ...(await layout()), recover: true, now: () => clock, log: () => undefined,
      hooks: {
        afterClaim: async (digest) => {
          if (!arrived) return;
          await new Promise<void>((resume) => { paused = { digest, resume }; arrived!(); });
        },
      },
    });
  });
  test.after.each(async () => { await store.close(); });

  /** A blob the remote cache held and evicted: unused, its bytes still stored. */
  async function cached(size: number): Promise<ReturnType<typeof blob>> {
    const item = blob(randomBytes(size));
    await store.lifecycle.write(remote, Readable.from([item.bytes]), parseDigest(item.digest)!);
    await store.metadata.blobLinks.unlink(remote, item.digest);
    return item;
  }

  const writeLocal = (bytes: Buffer) => store.lifecycle.write(local, Readable.from([bytes]), parseDigest(blob(bytes).digest)!);

  /** What `work` settles to, or a note that it is still waiting after 5 s (a commit waits 30 s for a running collector). */
  async function promptly(work: Promise<unknown>): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const settled = work.catch((error: unknown) => error);
    const result = await Promise.race([settled, new Promise((resolve) => { timer = setTimeout(resolve, 5_000, 'still waiting after 5 s'); })]);
    clearTimeout(timer);
    if (result === 'still waiting after 5 s') await settled; // not left running past the test
    return result;
  }

  /** Pushes `bytes` into the local image, stopping at the barrier until `during` has run. */
  async function pushAcross(bytes: Buffer, during: () => Promise<void>): Promise<unknown> {
    const atBarrier = new Promise<void>((resolve) => { arrived = resolve; });
    const push = store.lifecycle.write(local, Readable.from([bytes]), parseDigest(blob(bytes).digest)!).catch((error: unknown) => error);
    await atBarrier;
    arrived = null;
    await during();
    paused!.resume();
    return push;
  }

  test('eviction and a collection between claim and link cannot take the bytes of a push', async () => {
    const layer = blob(randomBytes(200_000));
    await store.lifecycle.write(remote, Readable.from([layer.bytes]), parseDigest(layer.digest)!); // the cache fill
    clock += 2 * hour; // the cached blob is old
    const result = await pushAcross(layer.bytes, async () => {
      assert.ok(await store.metadata.blobLinks.unlink(remote, layer.digest), 'evicted');
      const summary = await collectGarbage(store, policy);
      assert.is(summary.blobs, 0, 'the claim touched the blob: the collector leaves it alone');
    });
    assert.equal(result, { digest: layer.digest, size: layer.bytes.length });
    const image = makeImage({ share: [layer] });
    await store.lifecycle.write(local, Readable.from([image.config.bytes]), parseDigest(image.config.digest)!);
    assert.equal(await store.metadata.manifests.push({ ...local, manifest: parseManifest(image.manifest), content: image.manifest, tag: '1.0', now: clock }), { missing: [], dropped: [] });
    assert.ok((await readAll(store, layer.digest)).equals(layer.bytes), 'the tagged image has its bytes');
    clock += 2 * hour;
    assert.is((await collectGarbage(store, policy)).blobs, 0, 'a tagged image keeps its blobs');
    assert.ok((await readAll(store, layer.digest)).equals(layer.bytes));
  });

  test('a push stalled past the grace period while the collector deletes its blob fails cleanly: no link, and a retry succeeds', async () => {
    const layer = blob(randomBytes(100_000));
    await store.lifecycle.write(remote, Readable.from([layer.bytes]), parseDigest(layer.digest)!);
    const result = await pushAcross(layer.bytes, async () => {
      await store.metadata.blobLinks.unlink(remote, layer.digest);
      clock += 2 * hour; // the push stalls for longer than gc.grace
      const summary = await collectGarbage(store, policy);
      assert.is(summary.blobs, 1, 'the collector deleted the unused blob');
    });
    assert.instance(result, Error);
    assert.match((result as Error).message, 'retry the push');
    assert.is(await store.metadata.blobLinks.size(local, layer.digest), null, 'no link to missing bytes');
    assert.equal(await store.lifecycle.write(local, Readable.from([layer.bytes]), parseDigest(layer.digest)!), { digest: layer.digest, size: layer.bytes.length });
    assert.ok((await readAll(store, layer.digest)).equals(layer.bytes));
  });

  test('a commit that meets a blob the collector is deleting waits for it, then commits the bytes afresh', async () => {
    const layer = blob(randomBytes(50_000));
    await store.lifecycle.write(remote, Readable.from([layer.bytes]), parseDigest(layer.digest)!);
    await store.metadata.blobLinks.unlink(remote, layer.digest);
    clock += 2 * hour;
    assert.is(await store.metadata.collector.lease(collector, clock, clock + hour), null);
    const [marked] = (await store.metadata.collector.markUnusedBlobs(clock - hour, { after: null, size: 10 })).marked;
    assert.is(marked?.digest, layer.digest);
    const push = store.lifecycle.write(local, Readable.from([layer.bytes]), parseDigest(layer.digest)!);
    await store.blobs.delete(layer.digest); // the collector's next steps, while the push waits
    await store.metadata.collector.forget([layer.digest]);
    await store.metadata.collector.release(collector);
    assert.equal(await push, { digest: layer.digest, size: layer.bytes.length });
    assert.ok((await readAll(store, layer.digest)).equals(layer.bytes));
  });

  test('a collection whose deletions fail leaves no mark that holds a push of the blob up', async () => {
    const layer = await cached(10_000);
    clock += 2 * hour;
    const remove = store.blobs.delete;
    store.blobs.delete = async () => { throw new Error('the object store timed out'); };
    try {
      await collectGarbage(store, policy).then(() => assert.unreachable('the collection failed'), (error: Error) => assert.match(error.message, 'timed out'));
    } finally {
      store.blobs.delete = remove;
    }
    assert.equal((await store.metadata.collector.deleting(10)).map((row) => row.digest), [layer.digest], 'left marked, lease released');
    assert.equal(await promptly(writeLocal(layer.bytes)), { digest: layer.digest, size: layer.bytes.length });
    assert.ok((await readAll(store, layer.digest)).equals(layer.bytes));
    assert.is(await store.metadata.blobLinks.size(local, layer.digest), layer.bytes.length);
  });

  test('a collection killed after marking (its lease lapsed): pushes take the blobs back, bytes deleted or not; a mount never links missing bytes', async () => {
    const gone = await cached(10_000);
    const kept = await cached(10_000);
    clock += 2 * hour;
    assert.is(await store.metadata.collector.lease(collector, clock, clock + 60_000), null);
    assert.is((await store.metadata.collector.markUnusedBlobs(clock - hour, { after: null, size: 10 })).marked.length, 2);
    await store.blobs.delete(gone.digest); // killed in the middle of the batch
    clock += 2 * 60_000; // the dead collector's lease lapses; nobody released it
    assert.is(await store.lifecycle.linkExisting(local, gone.digest, gone.bytes.length), false, 'no link to bytes that are gone');
    assert.is(await store.lifecycle.linkExisting(local, kept.digest, kept.bytes.length), false, 'nor to a mark');
    for (const item of [gone, kept]) {
      assert.equal(await promptly(writeLocal(item.bytes)), { digest: item.digest, size: item.bytes.length });
      assert.ok((await readAll(store, item.digest)).equals(item.bytes));
    }
    assert.is((await collectGarbage(store, policy)).blobs, 0, 'the next collection finds nothing left to finish');
    for (const item of [gone, kept]) assert.ok((await readAll(store, item.digest)).equals(item.bytes));
  });

  test('a collector whose lease lapsed while deleting does not delete what a push took back meanwhile', async () => {
    // More than one round of deletions (16): during the first, the push takes back one of a later round.
    const items = await Promise.all(Array.from({ length: 20 }, () => cached(1_000)));
    clock += 2 * hour;
    const remove = store.blobs.delete.bind(store.blobs);
    const called = new Set<string>();
    let taken: (typeof items)[number] | undefined;
    let pushed: unknown = null;
    store.blobs.delete = async (digest) => {
      called.add(digest);
      if (called.size === 1) {
        await new Promise(setImmediate); // the rest of the round has started
        taken = items.find((item) => !called.has(item.digest))!;
        clock += 6 * 60_000; // the deletions take longer than the lease
        pushed = await promptly(writeLocal(taken.bytes));
      }
      await remove(digest);
    };
    let summary;
    try {
      summary = await collectGarbage(store, policy);
    } finally {
      store.blobs.delete = remove;
    }
    assert.equal(pushed, { digest: taken!.digest, size: taken!.bytes.length });
    assert.ok(await store.blobs.stat(taken!.digest), 'the pushed blob kept its bytes');
    assert.is(summary.blobs, items.length - 1, 'and the summary counts what went');
  });

  test('a dry run holds no push up: a push made while it sweeps commits before it ends, and the dry run changes nothing', async () => {
    const doomed = makeImage({ layers: 1 });
    for (const item of [doomed.config, ...doomed.layers]) await store.lifecycle.write(local, Readable.from([item.bytes]), parseDigest(item.digest)!);
    await store.metadata.manifests.push({ ...local, manifest: parseManifest(doomed.manifest), content: doomed.manifest, tag: null, now: clock });
    clock += 2 * hour;
    const layer = blob(randomBytes(10_000));
    let pushed: unknown = null;
    const dry = await collectGarbage(store, policy, {
      dryRun: true,
      batch: 1,
      // Between two of the dry run's batches, which wait for this: a push must not wait for the dry run.
      onProgress: async (_, phase) => {
        if (phase !== 'manifests' || pushed !== null) return;
        const push = store.lifecycle.write(local, Readable.from([layer.bytes]), parseDigest(layer.digest)!);
        let timer: NodeJS.Timeout | undefined;
        pushed = await Promise.race([push, new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'still waiting after 10 s'); })]);
        clearTimeout(timer);
      },
    });
    assert.equal(pushed, { digest: layer.digest, size: layer.bytes.length }, 'the push committed during the dry run');
    assert.equal({ manifests: dry.manifests, blobs: dry.blobs }, { manifests: 1, blobs: 2 });
    assert.equal((await collectGarbage(store, policy)).manifests, 1, 'the dry run removed nothing');
    assert.equal(await store.metadata.blobLinks.size(local, layer.digest), layer.bytes.length, 'the push made during the dry run is linked');
  });

  test.run();
}
