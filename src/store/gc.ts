import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Store } from './index.js';
import { processAlive } from './process-alive.js';
import type { Batch, BlobRow, CollectorQueries, Swept } from './metadata/types.js';

// The garbage collector: the only code that deletes bytes. It runs online, in batches of
// `batch` rows (200), each one short transaction, so requests never wait on it for long:
//   1. finishes deletions an interrupted run had marked (rows left `deleting`);
//   2. ends upload sessions older than uploads.expireAfter (and, on S3, abandoned multipart uploads);
//   3. local repositories with gc.untagged: delete — removes manifests no tag reaches (not a tag's
//      target, not a child of a manifest the image holds, not a referrer of one), pushed longer
//      than gc.grace ago; repeated until none is left, so the children of a removed index follow;
//   4. forgets manifest rows no image holds any more;
//   5. local repositories — unlinks blobs that no manifest of their image references, linked
//      and last pulled (HEAD or GET) longer than gc.grace ago (layers of removed manifests,
//      uploads never used);
//   6. marks `deleting` the blobs nothing links or references, untouched for gc.grace, deletes
//      their bytes, then their rows (a push meeting a mark once the lease is gone, a run that
//      failed or was killed, takes the blob back: metadata/blobs.ts);
//   7. deletes bytes no row names (an interrupted run, a database restored from backup), older
//      than gc.grace, claiming each with a `deleting` row first.
// Remote repositories' manifests and blobs are cache entries: only eviction or DELETE drops them.
// Every removal re-checks its conditions in the deleting statement (see metadata/collector.ts),
// and one lease makes sure a single collector runs at a time (a killed one's lease is taken over).

export interface CollectPolicy {
  grace: number;
  uploadsExpireAfter: number;
  /** Local repositories: their unreferenced blob links are collected. */
  localRepositories: string[];
  /** Local repositories whose untagged manifests are collected (gc.untagged: delete). */
  untaggedRepositories: string[];
}

export interface CollectSummary {
  dryRun: boolean;
  manifests: number;
  blobs: number;
  bytes: number;
  uploads: number;
}

export interface CollectOptions {
  dryRun?: boolean;
  /** Rows per transaction. */
  batch?: number;
  /** Told after every batch (a progress bar). */
  /** Told after each batch; the collection goes on when what it returns settles. */
  onProgress?: (summary: CollectSummary, phase: string) => void | Promise<void>;
  /** Stops between batches (shutdown); what is done stays done. */
  signal?: AbortSignal;
}

/** How long a collector's lease lasts without renewal (it renews after every batch). */
const leaseMs = 5 * 60_000;

/** A lease holder on this host whose process is gone (killed mid-collection). */
function deadLocalHolder(holder: string): boolean {
  const [host, pid] = holder.split(':');
  return host === hostname() && Number(pid) > 0 && Number(pid) !== process.pid && !processAlive(Number(pid));
}

export async function collectGarbage(store: Store, policy: CollectPolicy, options: CollectOptions = {}): Promise<CollectSummary> {
  const { metadata, blobs } = store;
  const batch = options.batch ?? 200;
  const dryRun = options.dryRun ?? false;
  const summary: CollectSummary = { dryRun, manifests: 0, blobs: 0, bytes: 0, uploads: 0 };
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const renew = async (collector: CollectorQueries = metadata.collector) => {
    // Between batches, requests go first: SQLite's statements run synchronously, so without this
    // a whole collection would be one turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    options.signal?.throwIfAborted();
    const now = store.now();
    const holder = await collector.lease(owner, now, now + leaseMs);
    if (holder === null) return;
    if (!deadLocalHolder(holder) || (await collector.lease(owner, now, now + leaseMs, holder)) !== null) {
      throw new Error(`another garbage collection is running (${holder.split(':').slice(0, 2).join(' pid ')})`);
    }
  };
  /**
   * Deletes bytes a few at a time (an object store answers each delete in a round trip). Before
   * each few, the lease is renewed and the rows re-read: a push takes back the marked rows of a
   * collector whose lease lapsed (deletes timing out), and places their bytes again.
   */
  const deleteAll = async <T extends { digest: string; size: number }>(rows: T[]): Promise<T[]> => {
    const deleted: T[] = [];
    for (let i = 0; i < rows.length; i += 16) {
      await renew();
      const few = rows.slice(i, i + 16);
      const still = new Set(await metadata.collector.stillDeleting(few.map((row) => row.digest)));
      const doomed = few.filter((row) => still.has(row.digest));
      await Promise.all(doomed.map((row) => blobs.delete(row.digest)));
      deleted.push(...doomed);
    }
    return deleted;
  };
  /** Counts what is (or, in a dry run, would be) removed. */
  const count = (rows: { size: number }[]) => {
    summary.blobs += rows.length;
    summary.bytes += rows.reduce((total, row) => total + row.size, 0);
  };
  const progress = async (phase: string) => { await options.onProgress?.({ ...summary }, phase); };
  const cutoff = store.now() - policy.grace;
  await renew();
  await metadata.pulls.flush(); // this process's latest pulls protect what they read
  try {
    // 1. Deletions an interrupted run had started.
    if (!dryRun) {
      for (let rows = await metadata.collector.deleting(batch); rows.length > 0; rows = await metadata.collector.deleting(batch)) {
        const deleted = await deleteAll(rows);
        await metadata.collector.forget(deleted.map((row) => row.digest));
        count(deleted);
        await renew();
      }
    }
    // 2. Abandoned upload sessions.
    const expired = store.now() - policy.uploadsExpireAfter;
    summary.uploads = dryRun ? (await metadata.uploads.startedBefore(expired, 1_000_000)).length : await store.uploads.expire(expired);
    await progress('uploads');
    // 3-6; a dry run rehearses them (what it finds is real, what it changes is dropped).
    const sweep = async (collector: CollectorQueries) => {
      /** Runs `step` over every window; returns what it removed. */
      const pass = async (step: (window: Batch) => Promise<Swept>): Promise<number> => {
        let removed = 0;
        let after: string[] | null = null;
        do {
          const swept: Swept = await step({ after, size: batch });
          removed += swept.removed;
          after = swept.next;
          await renew(collector);
          await progress('manifests');
        } while (after);
        return removed;
      };
      for (const repo of policy.untaggedRepositories) {
        // Again while a pass removes something: the children of a removed index are untagged next.
        for (let removed = 1; removed > 0;) {
          removed = await pass((window) => collector.sweepUntaggedManifests(repo, cutoff, window));
          summary.manifests += removed;
        }
      }
      await pass((window) => collector.sweepOrphanManifests(window));
      for (const repo of policy.localRepositories) await pass((window) => collector.sweepUnreferencedLinks(repo, cutoff, window));
      let after: string[] | null = null;
      do {
        const { marked, next }: { marked: BlobRow[]; next: string[] | null } = await collector.markUnusedBlobs(cutoff, { after, size: batch });
        const deleted = dryRun ? marked : await deleteAll(marked);
        if (!dryRun) await collector.forget(deleted.map((row) => row.digest));
        count(deleted);
        after = next;
        await renew(collector);
        await progress('blobs');
      } while (after);
    };
    if (dryRun) await metadata.rehearse((tx) => sweep(tx.collector));
    else await sweep(metadata.collector);
    // 7. Bytes no row names.
    let pending: { digest: string; size: number }[] = [];
    const settle = async () => {
      for (const digest of await metadata.collector.unregistered(pending.map((item) => item.digest))) {
        const item = pending.find((stored) => stored.digest === digest)!;
        if (!dryRun) {
          if (!(await metadata.collector.claimUnregistered(digest, item.size, store.now()))) continue;
          if ((await deleteAll([item])).length === 0) continue;
          await metadata.collector.forget([digest]);
        }
        count([item]);
      }
      pending = [];
      await renew();
      await progress('unregistered bytes');
    };
    for await (const stored of blobs.list()) {
      if (stored.modifiedAt >= cutoff) continue;
      pending.push(stored);
      if (pending.length >= batch) await settle();
    }
    if (pending.length > 0) await settle();
  } finally {
    await metadata.collector.release(owner).catch(() => undefined);
  }
  return summary;
}

export interface PeriodicCollection {
  /** Runs a collection now (one at a time in this process; an on-demand run waits for a running one). */
  collect(options?: Omit<CollectOptions, 'signal'>): Promise<CollectSummary>;
  stop(): Promise<void>;
}

/** Collects every `interval` ms (0: never on its own), logging what was freed; `collect` runs one on demand. */
export function periodicCollection(store: Store, policy: CollectPolicy, options: { interval: number; log: (message: string) => void }): PeriodicCollection {
  const abort = new AbortController();
  let running: Promise<unknown> = Promise.resolve();
  const collect = (collectOptions: Omit<CollectOptions, 'signal'> = {}) => {
    const run = running.then(() => collectGarbage(store, policy, { ...collectOptions, signal: abort.signal }));
    running = run.catch(() => undefined);
    return run;
  };
  let scheduled = false;
  const timer = options.interval > 0
    ? setInterval(() => {
      if (scheduled) return; // the previous run is still going: skip this turn
      scheduled = true;
      const started = performance.now();
      collect().then((summary) => {
        if (summary.blobs + summary.manifests + summary.uploads > 0) {
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          options.log(`garbage collection: ${summary.manifests} manifests, ${summary.blobs} blobs (${summary.bytes} bytes), ${summary.uploads} upload sessions removed in ${seconds} s`);
        }
      }, (error: unknown) => {
        if (!abort.signal.aborted) options.log(`garbage collection failed: ${error instanceof Error ? error.message : String(error)}`);
      }).finally(() => { scheduled = false; });
    }, options.interval).unref()
    : null;
  return {
    collect,
    async stop() {
      if (timer) clearInterval(timer);
      abort.abort();
      await running;
    },
  };
}
