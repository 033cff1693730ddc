import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { AcceptedTypes } from '../oci/accept.js';
import { isDigest, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { maxManifestBytes, parseManifest, type Descriptor } from '../oci/manifest.js';
import { manifestAcceptHeader } from '../oci/mediatypes.js';
import { committed } from '../cache/download.js';
import type { BlobDownloads, JoinResult } from '../cache/downloads.js';
import { fillReader } from '../cache/fill-reader.js';
import type { BlobReader } from '../cache/small-blobs.js';
import { newCacheStats, type CacheStats } from '../cache/stats.js';
import type { RemoteRepositoryConfig } from '../config/types.js';
import { countSent } from '../store/blobs/file-body.js';
import { reasonOf } from '../store/errors.js';
import type { ImageRef, Page, Store } from '../store/index.js';
import type { ManifestRow } from '../store/metadata/types.js';
import { readBody } from '../upstream/body.js';
import { allowedUrls, fetchForeignLayer } from '../upstream/foreign.js';
import type { ManifestFlights } from './manifest-flights.js';
import { negotiate } from './negotiate.js';
import { listing, readBlob, toManifest } from './reading.js';
import { first, UpstreamGate, type SharedUpstreamState, type UpstreamObserver } from './upstream-gate.js';
import type { BlobRead, ByteRange, Listing, Manifest, ReadOptions, Repository } from './repository.js';

// A pull-through cache of one upstream registry.
//   Manifests by digest: immutable, fetched once and kept.
//   Manifests by tag: trusted for metadataTtl; then revalidated with HEAD (Docker Hub does not
//     count a HEAD as a pull) and fetched again only when the digest changed. The upstream is
//     always asked with every manifest type, and the answer is stored whole; what a client may
//     receive is negotiated here, so a client that does not accept indexes never changes what
//     others get. A tag the upstream answers 404 for is dropped, as a DELETE drops it.
//   Blobs: one upstream fetch per digest, streamed to every waiting client while it is written
//     (cache/downloads.ts); served from disk afterwards.
//   Referrers: the upstream's referrers API, or, where it has none, its referrers tag.
//   Upstream failures: cached tags (and the cached tag list) are served stale (serveStale) with
//     a Warning header; the circuit breaker and the mapping of upstream answers live in
//     upstream-gate.ts.
//   Eviction (cache.maxSize) only unlinks blobs: the store's collector frees the bytes.

/**
 * RFC 9111 §5.5 Warning 110 ("Response is Stale"). It names neither the upstream nor its failure:
 * callers may not see the configuration; the log has both.
 */
const staleWarning = '110 wharf "Response is Stale: the upstream failed, this is the cached copy"';

/**
 * A refused foreign layer is logged once per digest in this long (a busy pull meets it on every
 * request), and for at most this many digests at a time: the memory of what was said stays small.
 */
const refusalLogMs = 3_600_000;
const refusalLogDigests = 1_000;

/** An upstream failure for the log, naming the upstream once. */
function describeFailure(upstream: string, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  return reason.includes(upstream) ? reason : `upstream ${upstream} failed: ${reason}`;
}

/** What a read that may not fetch (no Deploy/Cache permission) gets for anything not cached. */
function notCached(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', what: string, key: string): RegistryError {
  return new RegistryError(code, { message: `${what} is not cached in ${key}; fetching it from the upstream needs the deploy permission` });
}

export interface RemoteRepositoryOptions {
  key: string;
  config: RemoteRepositoryConfig;
  store: Store;
  reader: BlobReader;
  downloads: BlobDownloads;
  log: (message: string) => void;
  /** Upstream latency and failures, for metrics. */
  observeUpstream?: UpstreamObserver;
  /** Token cache, circuit breaker and manifest fetches shared by every worker; absent: this process's own. */
  shared?: SharedUpstreamState;
}

/** The spec's fallback tag for a subject's referrers: `<alg>-<ref>`, the algorithm cut to 32 characters and the encoded digest to 64 (a tag is at most 128). */
function referrersTag(digest: string): string {
  const [algorithm, encoded] = digest.split(':') as [string, string];
  return `${algorithm.slice(0, 32)}-${encoded.slice(0, 64)}`;
}

export class RemoteRepository implements Repository {
  readonly kind = 'remote';
  readonly key: string;
  readonly stats: CacheStats = newCacheStats();
  readonly #config: RemoteRepositoryConfig;
  readonly #store: Store;
  readonly #reader: BlobReader;
  readonly #downloads: BlobDownloads;
  readonly #upstream: UpstreamGate;
  readonly #log: (message: string) => void;
  readonly #manifestFetches = new Map<string, Promise<Manifest>>();
  readonly #flights: ManifestFlights | null;
  /** Referrers answers, trusted for metadataTtl like tags. */
  readonly #referrers = new Map<string, { at: number; descriptors: Descriptor[] }>();
  /** Foreign layers whose refusal was logged lately, by digest. */
  readonly #refusalsLogged: LRUCache<string, true>;
  /** Evictions run one after another: two at once would both count bytes the other is removing. */
  #evictions: Promise<void> = Promise.resolve();

  constructor(options: RemoteRepositoryOptions) {
    this.key = options.key;
    this.#config = options.config;
    this.#store = options.store;
    this.#reader = options.reader;
    this.#downloads = options.downloads;
    this.#log = options.log;
    this.#flights = options.shared?.manifests ?? null;
    // ttlResolution 0: the store's clock is read at every check (tests move it).
    this.#refusalsLogged = new LRUCache<string, true>({ max: refusalLogDigests, ttl: refusalLogMs, ttlResolution: 0, perf: { now: options.store.now } });
    this.#upstream = new UpstreamGate({ key: options.key, config: options.config, stats: this.stats, log: options.log, now: options.store.now, ...(options.observeUpstream ? { observe: options.observeUpstream } : {}), ...(options.shared ? { shared: options.shared } : {}) });
  }

  async #fetchManifest(name: string, reference: string, options: ReadOptions): Promise<Manifest> {
    if (options.fetch === false) throw notCached('MANIFEST_UNKNOWN', `manifest ${name}:${reference}`, this.key);
    this.#upstream.knownMissing(`manifest ${name}:${reference}`);
    const key = `${name}\u0000${reference}`;
    let pending = this.#manifestFetches.get(key);
    if (pending) this.stats.joins++;
    else {
      pending = (async () => {
        // With workers: one of them asks the upstream; the others read what it cached.
        const askedAt = this.#store.now();
        const flight = await this.#flights?.take(`${this.key}\u0000${key}`);
        if (flight && !flight.lead) {
          this.stats.joins++;
          await flight.ended;
          const cached = await this.#cachedByAnother(name, reference, askedAt);
          if (cached) return cached;
        }
        try {
          return await this.#fromUpstream(name, reference);
        } finally {
          if (flight?.lead) flight.ended();
        }
      })().finally(() => this.#manifestFetches.delete(key));
      this.#manifestFetches.set(key, pending);
    }
    return pending;
  }

  /**
   * The manifest another worker's fetch of `reference` cached (null when it cached none: it
   * failed). A digest's row is right whoever cached it. A tag's mapping counts only when confirmed
   * after `askedAt`: an older one may be the very mapping this fetch was to replace (its
   * metadataTtl ran out, or the upstream now names another digest), and serving it as a join would
   * hide that the fetch failed. Strictly after: the clock counts whole milliseconds, so a
   * confirmation in the same one may predate the ask; taking it could be a wrong answer, refusing
   * it costs at most one more upstream request.
   */
  async #cachedByAnother(name: string, reference: string, askedAt: number): Promise<Manifest | null> {
    const { tags, manifests } = this.#store.metadata;
    const image = this.#image(name);
    let digest: string | undefined = reference;
    if (!isDigest(reference)) {
      // Mapping and confirmation from one snapshot: the mapping is the one confirmed, or newer.
      const found = await tags.getConfirmed(image, reference);
      digest = found && found.confirmed_at !== null && found.confirmed_at > askedAt ? found.digest : undefined;
    }
    const row = digest ? await manifests.inImage(image, digest) : undefined;
    return row ? toManifest(row, 'JOIN') : null;
  }

  /** Fetches the manifest from the upstream and caches it. */
  async #fromUpstream(name: string, reference: string): Promise<Manifest> {
    const response = await this.#upstream.send('GET', name, `manifests/${reference}`, { accept: manifestAcceptHeader });
    if (response.status !== 200) throw await this.#upstream.refusal(response, `manifest ${name}:${reference}`, 'MANIFEST_UNKNOWN');
    const content = await readBody(response, maxManifestBytes);
    const byDigest = parseDigest(reference);
    const manifest = parseManifest(content, first(response.headers['content-type']), byDigest?.algorithm);
    if (byDigest && manifest.digest !== reference) {
      throw new RegistryError('DIGEST_INVALID', { status: 502, message: `upstream ${this.#config.url} sent a manifest with digest ${manifest.digest} for ${reference}` });
    }
    await this.#store.metadata.manifests.cache({ ...this.#image(name), manifest, content, tag: byDigest ? null : reference, now: this.#store.now() });
    this.stats.misses++;
    return { digest: manifest.digest, mediaType: manifest.mediaType, content, cache: 'MISS' as const };
  }

  #image(name: string): ImageRef {
    return { repo: this.key, name };
  }

  /** Whether a failure may be answered from the cache (upstream trouble, not a refusal). */
  #mayServeStale(error: unknown): boolean {
    return this.#config.serveStale && !(error instanceof RegistryError && error.status < 500);
  }

  async #manifestByDigest(name: string, digest: string, options: ReadOptions): Promise<Manifest> {
    const row = await this.#store.metadata.manifests.inImage(this.#image(name), digest);
    return row ? this.#hit(row) : this.#fetchManifest(name, digest, options);
  }

  async #manifestByTag(name: string, tag: string, options: ReadOptions): Promise<Manifest> {
    const { tags, manifests } = this.#store.metadata;
    const image = this.#image(name);
    const found = await tags.getConfirmed(image, tag);
    const digest = found?.digest;
    const row = digest && await manifests.content(digest);
    if (!digest || !row) return this.#fetchManifest(name, tag, options);
    const confirmedAt = found.confirmed_at;
    if (options.fetch === false || (confirmedAt !== null && this.#store.now() - confirmedAt < this.#config.metadataTtl)) return this.#hit(row, found.pushed_at);
    try {
      const head = await this.#upstream.send('HEAD', name, `manifests/${tag}`, { accept: manifestAcceptHeader });
      head.body.resume();
      if (head.status === 200 && first(head.headers['docker-content-digest']) === digest) {
        await tags.confirm(image, tag, this.#store.now());
        return this.#hit(row, found.pushed_at);
      }
      if (head.status !== 200 && head.status !== 404) throw await this.#upstream.refusal(head, `manifest ${name}:${tag}`, 'MANIFEST_UNKNOWN');
      return await this.#fetchManifest(name, tag, options);
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN') {
        // The upstream says the tag is gone: so is the cached one, as after a DELETE (never served
        // stale later; the next pull meets the 404 cache). Only while it still names `digest`.
        await this.#uncache(name, tag, digest);
        throw error;
      }
      if (!this.#mayServeStale(error)) throw error;
      this.stats.stale++;
      this.#log(`${this.key}: serving stale ${name}:${tag} (${digest}): ${describeFailure(this.#config.url, error)}`);
      const stale = toManifest(row, 'STALE');
      stale.pushedAt = found.pushed_at;
      stale.warning = staleWarning;
      return stale;
    }
  }

  #hit(row: ManifestRow, pushedAt?: number): Manifest {
    this.stats.hits++;
    const manifest = toManifest(row, 'HIT'); // assigned, not spread: one hidden class for every hit
    if (pushedAt) manifest.pushedAt = pushedAt;
    return manifest;
  }

  /** Counts the bytes a client is sent. */
  #served(stream: Readable): Readable {
    return countSent(stream, (bytes) => { this.stats.servedBytes += bytes; });
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes, options: ReadOptions = {}): Promise<Manifest> {
    if (isDigest(reference)) {
      const manifest = await this.#manifestByDigest(name, reference, options);
      this.#store.metadata.pulls.note('manifest', this.#image(name), manifest.digest, { download: !options.head });
      return manifest;
    }
    const manifest = await this.#manifestByTag(name, reference, options);
    const chosen = await negotiate(manifest, accepted, (digest) => this.#manifestByDigest(name, digest, options));
    this.#store.metadata.pulls.note('manifest', this.#image(name), chosen.digest, { download: !options.head });
    return chosen === manifest ? manifest : { ...chosen, ...(manifest.warning ? { warning: manifest.warning } : {}) };
  }

  /**
   * Drops `reference` from the cache: a digest's manifest, or a tag (its manifest stays, by digest);
   * with `digest`, a tag only while it still names that manifest. Whether there was one to drop.
   */
  async #uncache(name: string, reference: string, digest?: string): Promise<boolean> {
    const { manifests, tags } = this.#store.metadata;
    const image = this.#image(name);
    return isDigest(reference) ? manifests.unlink(image, reference) : tags.remove(image, reference, digest);
  }

  async deleteManifest(name: string, reference: string): Promise<void> {
    if (!(await this.#uncache(name, reference))) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not cached in ${this.key}`, detail: { name, reference } });
  }

  async deleteImage(name: string): Promise<void> {
    if (!(await this.#store.metadata.images.remove(this.#image(name)))) {
      throw new RegistryError('NAME_UNKNOWN', { message: `no image ${name} is cached in ${this.key}`, detail: { name } });
    }
  }

  /**
   * What the repository holds of `digest` for this image: the size its own link gives (a link means
   * the bytes are in the store: only the collector removes them, and never linked ones), and whether
   * the image names the blob (links it, or a manifest of it cached here names it). Blobs are shared by
   * every image, but permissions are per image: a digest alone is no right to another image's copy,
   * or to its download.
   */
  async #held(name: string, digest: string): Promise<{ own: number | null; named: boolean }> {
    const { blobLinks } = this.#store.metadata;
    const image = this.#image(name);
    const own = await blobLinks.size(image, digest);
    return { own, named: own !== null || (await blobLinks.referencedBy(image, digest)).length > 0 };
  }

  /** A cached blob's size for this image: its own link, or, when it names the blob, the copy another image fetched first. */
  async #cachedSize(name: string, digest: string, named: boolean): Promise<number | null> {
    const { blobLinks } = this.#store.metadata;
    const own = await blobLinks.size(this.#image(name), digest);
    return own !== null || !named ? own : blobLinks.sizeInRepository(this.key, digest);
  }

  /** The blob's size as the upstream has it under this image's name (BLOB_UNKNOWN when it has none). */
  async #upstreamSize(name: string, digest: string, options: ReadOptions): Promise<number> {
    if (options.fetch === false) throw notCached('BLOB_UNKNOWN', `blob ${digest}`, this.key);
    this.#upstream.knownMissing(`blob ${name}@${digest}`);
    const response = await this.#upstream.send('HEAD', name, `blobs/${digest}`);
    response.body.resume();
    if (response.status !== 200) throw await this.#upstream.refusal(response, `blob ${name}@${digest}`, 'BLOB_UNKNOWN');
    return Number(first(response.headers['content-length']));
  }

  /** The foreign-layer descriptor of `digest` in a cached manifest of the image, when those are cached. */
  async #foreignLayer(name: string, digest: string): Promise<Descriptor | null> {
    if (!this.#config.foreignLayers.cache) return null;
    const content = await this.#store.metadata.manifests.withForeignLayer(this.#image(name), digest);
    return (content && parseManifest(content).foreign.find((layer) => layer.digest === digest)) || null;
  }

  /**
   * Rethrows; a foreign layer the allowlist refuses is logged, for administrators (only they are
   * told why): once per digest within refusalLogMs.
   */
  #refusalLogged(digest: string, error: unknown): never {
    if (error instanceof RegistryError && error.code === 'DENIED' && !this.#refusalsLogged.has(digest)) {
      this.#refusalsLogged.set(digest, true);
      this.#log(`${this.key}: ${error.message}`);
    }
    throw error;
  }

  async statBlob(name: string, digest: string, options: ReadOptions = {}): Promise<number> {
    const { own, named } = await this.#held(name, digest);
    const cached = own ?? await this.#cachedSize(name, digest, named);
    if (cached !== null) return cached;
    const foreign = await this.#foreignLayer(name, digest);
    if (foreign) {
      try {
        allowedUrls(foreign, this.#config.foreignLayers.allow);
      } catch (error) {
        this.#refusalLogged(digest, error);
      }
      return foreign.size;
    }
    return this.#upstreamSize(name, digest, options);
  }

  /**
   * Whether a copy another image cached may serve this one: the upstream has the blob under this
   * name too (one HEAD, instead of fetching the blob again). BLOB_UNKNOWN when it has not.
   */
  async #vouched(name: string, digest: string, options: ReadOptions): Promise<boolean> {
    if (options.fetch === false || (await this.#store.metadata.blobLinks.sizeInRepository(this.key, digest)) === null) return false;
    await this.#upstreamSize(name, digest, options);
    return true;
  }

  async openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null, options: ReadOptions = {}): Promise<BlobRead> {
    const held = await this.#held(name, digest);
    const { own } = held;
    const named = held.named || await this.#vouched(name, digest, options);
    // A running download is followed before the cache is asked again: one that ends meanwhile has
    // committed by then (it stops running only after its commit), so it is found there, never
    // fetched a second time. Another image's download or copy only for a blob this one names.
    const following = named ? await this.#downloads.follow(digest) : null;
    const cached = following ? null : own ?? await this.#cachedSize(name, digest, named);
    if (cached !== null) {
      const read = await readBlob(this.#store, this.#reader, digest, cached, pickRange);
      this.stats.hits++;
      this.#store.metadata.pulls.note('blob', this.#image(name), digest);
      return 'stream' in read ? { ...read, cache: 'HIT', stream: this.#served(read.stream) } : { ...read, cache: 'HIT' };
    }
    if (!following && options.fetch === false) throw notCached('BLOB_UNKNOWN', `blob ${digest}`, this.key);
    const { fill, started } = following ?? await this.#startOrJoin(name, digest);
    // A download this request did not start may be another image's: the upstream must have the blob under this name too.
    if (!named && !started) await this.#upstreamSize(name, digest, options);
    const size = fill.size;
    const range = size !== null ? pickRange?.(size) ?? null : null;
    const stream = this.#served(fillReader(fill, this.#store.blobs, range ?? { start: 0, end: size === null ? Number.MAX_SAFE_INTEGER : size - 1 }));
    if (started) this.stats.misses++;
    else this.stats.joins++;
    return { size, range, cache: started ? 'MISS' : 'JOIN', stream, stored: () => committed(fill) };
  }

  async #startOrJoin(name: string, digest: string): Promise<JoinResult> {
    const foreign = await this.#foreignLayer(name, digest);
    if (!foreign) this.#upstream.knownMissing(`blob ${name}@${digest}`);
    return this.#downloads.join(digest, {
      fetch: async () => {
        if (foreign) {
          return fetchForeignLayer(foreign, this.#config.foreignLayers.allow, this.#upstream.getElsewhere).catch((error: unknown) => {
            // A refusal (DENIED) is the allowlist's answer; a 502 is a foreign host that failed, logged as a failed fill.
            if (error instanceof RegistryError && error.status >= 500) this.#fillFailed(name, digest, 'its foreign URLs', error);
            return this.#refusalLogged(digest, error);
          });
        }
        const response = await this.#upstream.send('GET', name, `blobs/${digest}`);
        if (response.status !== 200) throw await this.#upstream.refusal(response, `blob ${name}@${digest}`, 'BLOB_UNKNOWN');
        const length = first(response.headers['content-length']);
        return { size: length === undefined ? null : Number(length), body: response.body, from: response.from };
      },
      onBytes: (bytes) => { this.stats.upstreamBytes += bytes; },
      upstreamFailed: (error, from) => this.#fillFailed(name, digest, from, error),
      storeFailed: (error) => this.#notCached(name, digest, error),
      commit: async (size, place) => {
        await this.#store.lifecycle.commit(this.#image(name), digest, size, place);
        this.#evictions = this.#evictions.then(() => this.#enforceLimit(digest))
          .catch((error: unknown) => this.#log(`${this.key}: cache eviction failed: ${String(error)}`));
      },
    });
  }

  /**
   * A blob fill the upstream failed (after the gate let its request through): its clients are cut
   * off, and this says why. `from` says where the bytes came from: a host (never a URL: a CDN's is
   * signed), or a foreign layer's URLs as a whole, whose error names the one that failed.
   */
  #fillFailed(name: string, digest: string, from: string, error: Error): void {
    this.stats.upstreamErrors++;
    this.#log(`${this.key}: blob ${name}@${digest} from ${from} failed, nothing was cached: ${error.message}`);
  }

  /**
   * A blob fill our side failed: the store's writer (a full or read-only disk), placing the bytes
   * (the object store refusing them) or linking them. Not an upstream error, and not counted as
   * one. The cause is a code or our own message, never a path, a URL or the store's own words.
   */
  #notCached(name: string, digest: string, error: Error): void {
    const cause = error instanceof RegistryError ? error.message : reasonOf(error);
    this.#log(`${this.key}: blob ${name}@${digest} could not be cached (clients not yet served whole are cut off; the next pull fetches it again): ${cause}`);
  }

  /**
   * Keeps the cache within cache.maxSize: unlinks the least recently pulled blobs (never `keep`,
   * the one just fetched). The bytes of a blob nothing links any more are freed by the store's
   * next collection; a blob a local repository also holds stays.
   */
  async #enforceLimit(keep: string): Promise<void> {
    const max = this.#config.cache.maxSize;
    if (max === null) return;
    const { blobLinks, pulls } = this.#store.metadata;
    let total = await blobLinks.repositoryBytes(this.key);
    if (total <= max) return;
    await pulls.flush();
    for (const blob of await blobLinks.leastRecentlyPulled(this.key, 10_000)) {
      if (total <= max) break;
      if (blob.digest === keep) continue;
      // Gone already: another worker's eviction, or a DELETE.
      if (await blobLinks.unlink(this.#image(blob.name), blob.digest)) this.stats.evictions++;
      total -= blob.size;
    }
  }

  async deleteBlob(name: string, digest: string): Promise<void> {
    if (!(await this.#store.metadata.blobLinks.unlink(this.#image(name), digest))) {
      throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not cached in ${this.key}/${name}`, detail: { digest } });
    }
  }

  async close(): Promise<void> {
    await this.#evictions;
    await this.#upstream.close();
  }

  /** The upstream's tag list; while the upstream fails, the tags cached here, with a Warning. */
  async listTags(name: string, page: Page, options: ReadOptions = {}): Promise<Listing<string>> {
    // Without the deploy permission: the tags cached here, without asking the upstream.
    if (options.fetch === false) return listing(await this.#store.metadata.tags.list(this.#image(name), { ...page, n: page.n + 1 }), page);
    const query = new URLSearchParams({ n: String(page.n + 1), ...(page.last ? { last: page.last } : {}) });
    try {
      const response = await this.#upstream.send('GET', name, `tags/list?${query}`);
      if (response.status !== 200) throw await this.#upstream.refusal(response, `image ${name}`, 'NAME_UNKNOWN');
      const tags = ((JSON.parse((await readBody(response, 16 << 20)).toString('utf8')) as { tags?: string[] | null }).tags ?? [])
        .filter((tag) => !page.last || tag > page.last).sort();
      return listing(tags, page);
    } catch (error) {
      const image = this.#image(name);
      if (!this.#mayServeStale(error) || !(await this.#store.metadata.images.exists(image))) throw error;
      this.stats.stale++;
      this.#log(`${this.key}: serving stale tags of ${name}: ${describeFailure(this.#config.url, error)}`);
      return { ...listing(await this.#store.metadata.tags.list(image, { ...page, n: page.n + 1 }), page), warning: staleWarning };
    }
  }

  async listImages(page: Page): Promise<Listing<string>> {
    return listing(await this.#store.metadata.images.list(this.key, { ...page, n: page.n + 1 }), page);
  }

  /**
   * Referrers on an upstream without the referrers API: those its clients listed, as the spec's
   * fallback says (distribution-spec 1.1, "Referrers Tag Schema"), in an index tagged `<alg>-<ref>`.
   * The tag is read as any other (cached, one fetch at a time); none when it is not there either.
   */
  async #taggedReferrers(name: string, digest: string, options: ReadOptions): Promise<Descriptor[]> {
    try {
      const index = await this.#manifestByTag(name, referrersTag(digest), options);
      return (JSON.parse(index.content.toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN') return [];
      throw error;
    }
  }

  async referrers(name: string, digest: string, options: ReadOptions = {}): Promise<Descriptor[]> {
    const key = `${name}\u0000${digest}`;
    const cached = this.#referrers.get(key);
    if (options.fetch === false) return cached?.descriptors ?? [];
    if (cached && this.#store.now() - cached.at < this.#config.metadataTtl) return cached.descriptors;
    let descriptors: Descriptor[];
    try {
      const response = await this.#upstream.send('GET', name, `referrers/${digest}`);
      if (response.status === 404) {
        response.body.resume();
        descriptors = await this.#taggedReferrers(name, digest, options);
      } else if (response.status !== 200) {
        throw await this.#upstream.refusal(response, `referrers of ${digest}`, 'MANIFEST_UNKNOWN');
      } else {
        descriptors = (JSON.parse((await readBody(response, maxManifestBytes)).toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
      }
    } catch (error) {
      if (cached && this.#config.serveStale) return cached.descriptors;
      throw error;
    }
    this.#referrers.set(key, { at: this.#store.now(), descriptors });
    return descriptors;
  }
}
