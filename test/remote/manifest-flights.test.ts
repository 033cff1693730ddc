import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobDownloads } from '../../src/cache/downloads.js';
import { loadConfig } from '../../src/config/load.js';
import { parseAccept } from '../../src/oci/accept.js';
import { localBreaker, type BreakerSettings } from '../../src/repos/breaker.js';
import type { ManifestFlight, ManifestFlights } from '../../src/repos/manifest-flights.js';
import type { Repository } from '../../src/repos/repository.js';
import { RepositorySet } from '../../src/repos/set.js';
import { openStore, type Store } from '../../src/store/index.js';
import { configFile } from '../helpers/config.js';
import { makeImage, type Image } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { tempDir } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// With workers, a process that follows another's fetch of a manifest reads what that fetch
// cached. When the leader's fetch of a tag failed, what is cached is the old mapping the fetch was
// to replace: the follower must ask the upstream itself, not serve it as a join. The repository
// under test is the real one over a real store (its clock injected) and a real Distribution; the
// test plays the other worker: it decides when the flight the repository follows ends, and what
// that worker cached meanwhile.

/** Flights the test decides: after `follow`, each take follows another process's, which ends when the test calls `end`. */
class TestFlights implements ManifestFlights {
  #following = false;
  #taken: () => void = () => undefined;
  #takes: Promise<void> = Promise.resolve();
  #end: () => void = () => undefined;

  take(): Promise<ManifestFlight> {
    if (!this.#following) return Promise.resolve({ lead: true, ended: () => undefined });
    this.#taken();
    return Promise.resolve({ lead: false, ended: new Promise<void>((resolve) => { this.#end = resolve; }) });
  }

  /** From now on, this process leads (the other worker is idle). */
  lead(): void {
    this.#following = false;
  }

  follow(): void {
    this.#following = true;
    this.#takes = new Promise((resolve) => { this.#taken = resolve; });
  }

  /** Resolves once `pull` has taken a flight; fails if it ends first (so the wait is bounded by the pull's). */
  taken(pull: Promise<unknown>): Promise<void> {
    return Promise.race([this.#takes, pull.then(() => { throw new Error('the pull ended without following a flight'); })]);
  }

  end(): void {
    this.#end();
  }
}

let distribution: Distribution;
let upstream: CountingProxy;
let store: Store;
let clock = Date.now();
const flights = new TestFlights();
const sets: RepositorySet[] = [];

/** docker-remote over the one store; `flights`: shared with other workers (the test), or none. */
async function remote(options: { metadataTtl: string; flights?: ManifestFlights }): Promise<Repository> {
  const config = loadConfig(await configFile(`repositories:\n  docker-remote: { type: remote, url: "${upstream.url}", metadataTtl: ${options.metadataTtl}, offlineAfter: 100 }\n`), {}, {});
  const shared = options.flights ? { shared: { tokens: () => new Map(), breaker: (_key: string, settings: BreakerSettings) => localBreaker(settings), manifests: options.flights } } : {};
  const set = RepositorySet.fromConfig(config, store, () => undefined, { downloads: new BlobDownloads(store.blobs, { memory: 8 << 20 }), ...shared });
  sets.push(set);
  return set.find('docker-remote')!;
}

const anything = parseAccept(undefined);

test.before(async () => {
  distribution = await startDistribution();
  upstream = await startCountingProxy(distribution.url);
  store = await openStore({ dataDir: await tempDir(), blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true, now: () => clock });
});
test.after(async () => {
  await Promise.all(sets.map((set) => set.close()));
  await store.close();
  await upstream.stop();
  await distribution.stop();
});
test.before.each(() => {
  flights.lead();
  upstream.reset();
});

/** Caches `name:v1` through `repository`, then moves the tag to a new image upstream (returned). */
async function retagged(repository: Repository, name: string): Promise<Image> {
  const first = makeImage({ layers: 1 });
  await seedImage(distribution.url, name, first, 'v1');
  assert.is((await repository.getManifest(name, 'v1', anything)).digest, first.digest);
  const second = makeImage({ layers: 1 });
  await seedImage(distribution.url, name, second, 'v1');
  upstream.reset();
  return second;
}

test('a follower whose leader cached nothing asks the upstream itself, instead of serving the old mapping of the tag', async () => {
  const repository = await remote({ metadataTtl: '1m', flights });
  const second = await retagged(repository, 'team/moved');
  clock += 2 * 60_000; // past metadataTtl: the pull revalidates, the upstream names the new digest
  flights.follow();
  const pull = repository.getManifest('team/moved', 'v1', anything);
  await flights.taken(pull);
  assert.is(upstream.counts['HEAD manifest'], 1);
  assert.is(upstream.counts['GET manifest'], undefined, 'the follower waits for the leader');
  flights.end(); // the leader's fetch failed: it cached nothing
  const manifest = await pull;
  assert.is(manifest.digest, second.digest, 'the upstream\'s current manifest, not the cached one the failed fetch was to replace');
  assert.is(manifest.cache, 'MISS');
  assert.is(manifest.warning, undefined);
  assert.is(upstream.counts['GET manifest'], 1, 'the follower asked the upstream');
});

test('a mapping confirmed in the millisecond the follower asked is not taken for the leader\'s (the clock counts whole milliseconds)', async () => {
  // metadataTtl 0: every pull revalidates, so the clock need not move for the old mapping to be due.
  const repository = await remote({ metadataTtl: '0s', flights });
  const second = await retagged(repository, 'team/same-ms');
  flights.follow();
  const pull = repository.getManifest('team/same-ms', 'v1', anything);
  await flights.taken(pull);
  flights.end();
  const manifest = await pull;
  assert.is(manifest.digest, second.digest, 'the old mapping was confirmed at the very millisecond of the ask: it may predate it');
  assert.is(upstream.counts['GET manifest'], 1);
});

test('a follower takes the new mapping the leader cached during the flight: no second upstream GET', async () => {
  const repository = await remote({ metadataTtl: '1m', flights });
  const leader = await remote({ metadataTtl: '1m' }); // another worker, over the same store
  const second = await retagged(repository, 'team/joined');
  clock += 2 * 60_000;
  flights.follow();
  const pull = repository.getManifest('team/joined', 'v1', anything);
  await flights.taken(pull);
  clock += 1; // the leader caches a millisecond after the follower asked
  assert.is((await leader.getManifest('team/joined', 'v1', anything)).digest, second.digest);
  flights.end();
  const manifest = await pull;
  assert.is(manifest.digest, second.digest);
  assert.is(manifest.cache, 'JOIN');
  assert.is(upstream.counts['GET manifest'], 1, 'the leader\'s GET only');
});

test.run();
