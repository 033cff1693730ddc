import type { Readable } from 'node:stream';
import type { AcceptedTypes } from '../oci/accept.js';
import { isDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { maxManifestBytes, parseManifest, type Descriptor } from '../oci/manifest.js';
import { manifestAcceptHeader } from '../oci/mediatypes.js';
import type { BlobDownloads } from '../cache/downloads.js';
import type { BlobReader } from '../cache/small-blobs.js';
import { newCacheStats, type CacheStats } from '../cache/stats.js';
import type { RemoteRepositoryConfig } from '../config/types.js';
import type { Store } from '../store/index.js';
import type { ManifestRow, Page } from '../store/metadata.js';
import { allowedUrls, fetchForeignLayer } from '../upstream/foreign.js';
import { negotiate } from './negotiate.js';
import { first, readBody, UpstreamGate, type UpstreamObserver } from './upstream-gate.js';
import type { BlobRead, ByteRange, Listing, Manifest, ReadOptions, Repository } from './repository.js';

// A pull-through cache of one upstream registry.
//   Manifests by digest: immutable, fetched once and kept.
//   Manifests by tag: trusted for metadataTtl; then revalidated with HEAD (Docker Hub does not
//     count a HEAD as a pull) and fetched again only when the digest changed. The upstream is
//     always asked with every manifest type, and the answer is stored whole; what a client may
//     receive is negotiated here, so a client that does not accept indexes never changes what
//     others get.
//   Blobs: one upstream fetch per digest, streamed to every waiting client while it is written
//     (cache/downloads.ts); served from disk afterwards.
//   Upstream failures: cached tags are served stale (serveStale) with a Warning header; the
//     circuit breaker and the mapping of upstream answers live in upstream-gate.ts.

/** What a read that may not fetch (no Deploy/Cache permission) gets for anything not cached. */
function notCached(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', what: string, key: string): RegistryError {
  return new RegistryError(code, { message: `${what} is not cached in ${key}; fetching it from the upstream needs the deploy permission` });
}

function toManifest(row: ManifestRow, cache: Manifest['cache']): Manifest {
  return { digest: row.digest, mediaType: row.media_type, content: row.content, ...(cache ? { cache } : {}), ...(row.pushed_at ? { pushedAt: row.pushed_at } : {}) };
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
  /** Referrers answers, trusted for metadataTtl like tags. */
  readonly #referrers = new Map<string, { at: number; descriptors: Descriptor[] }>();

  constructor(options: RemoteRepositoryOptions) {
    this.key = options.key;
    this.#config = options.config;
    this.#store = options.store;
    this.#reader = options.reader;
    this.#downloads = options.downloads;
    this.#log = options.log;
    this.#upstream = new UpstreamGate({ key: options.key, config: options.config, stats: this.stats, log: options.log, ...(options.observeUpstream ? { observe: options.observeUpstream } : {}) });
  }

  async #fetchManifest(name: string, reference: string, options: ReadOptions): Promise<Manifest> {
    if (options.fetch === false) throw notCached('MANIFEST_UNKNOWN', `manifest ${name}:${reference}`, this.key);
    this.#upstream.knownMissing(`manifest ${name}:${reference}`);
    const key = `${name}\u0000${reference}`;
    let pending = this.#manifestFetches.get(key);
    if (!pending) {
      pending = (async () => {
        const response = await this.#upstream.send('GET', name, `manifests/${reference}`, { accept: manifestAcceptHeader });
        if (response.status !== 200) throw await this.#upstream.refusal(response, `manifest ${name}:${reference}`, 'MANIFEST_UNKNOWN');
        const content = await readBody(response, maxManifestBytes);
        const manifest = parseManifest(content, first(response.headers['content-type']));
        if (isDigest(reference) && manifest.digest !== reference) {
          throw new RegistryError('DIGEST_INVALID', { status: 502, message: `upstream ${this.#config.url} sent a manifest with digest ${manifest.digest} for ${reference}` });
        }
        this.#store.metadata.putManifest({ repo: this.key, name, manifest, content, tag: isDigest(reference) ? null : reference, requireReferences: false });
        this.stats.misses++;
        return { digest: manifest.digest, mediaType: manifest.mediaType, content, cache: 'MISS' as const };
      })().finally(() => this.#manifestFetches.delete(key));
      this.#manifestFetches.set(key, pending);
    }
    return pending;
  }

  async #manifestByDigest(name: string, digest: string, options: ReadOptions): Promise<Manifest> {
    const row = this.#store.metadata.manifestByDigest(this.key, name, digest);
    return row ? this.#hit(row) : this.#fetchManifest(name, digest, options);
  }

  async #manifestByTag(name: string, tag: string, options: ReadOptions): Promise<Manifest> {
    const metadata = this.#store.metadata;
    const state = metadata.tagState(this.key, name, tag);
    const cached = state && metadata.manifestByTag(this.key, name, tag);
    if (!state || !cached) return this.#fetchManifest(name, tag, options);
    if (options.fetch === false || (state.checked_at !== null && Date.now() - state.checked_at < this.#config.metadataTtl)) return this.#hit(cached);
    try {
      const head = await this.#upstream.send('HEAD', name, `manifests/${tag}`, { accept: manifestAcceptHeader });
      head.body.resume();
      const digest = first(head.headers['docker-content-digest']);
      if (head.status === 200 && digest === state.digest) {
        metadata.touchTag(this.key, name, tag);
        return this.#hit(cached);
      }
      if (head.status !== 200 && head.status !== 404) throw await this.#upstream.refusal(head, `manifest ${name}:${tag}`, 'MANIFEST_UNKNOWN');
      return await this.#fetchManifest(name, tag, options);
    } catch (error) {
      if (!this.#config.serveStale || (error instanceof RegistryError && error.status < 500)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      this.stats.stale++;
      this.#log(`${this.key}: serving stale ${name}:${tag} (${state.digest}): ${reason}`);
      // Upstream errors name the upstream already; say it once.
      const cause = reason.includes(this.#config.url) ? reason : `upstream ${this.#config.url} failed: ${reason}`;
      return { ...toManifest(cached, 'STALE'), warning: `110 wharf "stale: ${cause.replace(/"/g, "'")}"` };
    }
  }

  #hit(row: ManifestRow): Manifest {
    this.stats.hits++;
    return toManifest(row, 'HIT');
  }

  /** Counts the bytes a client is sent. */
  #served(stream: Readable): Readable {
    stream.on('data', (chunk: Buffer) => { this.stats.servedBytes += chunk.length; });
    return stream;
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes, options: ReadOptions = {}): Promise<Manifest> {
    if (isDigest(reference)) return this.#manifestByDigest(name, reference, options);
    const manifest = await this.#manifestByTag(name, reference, options);
    const chosen = await negotiate(manifest, accepted, (digest) => this.#manifestByDigest(name, digest, options));
    return chosen === manifest ? manifest : { ...chosen, ...(manifest.warning ? { warning: manifest.warning } : {}) };
  }

  async deleteManifest(name: string, reference: string): Promise<void> {
    const metadata = this.#store.metadata;
    const deleted = isDigest(reference) ? metadata.deleteManifest(this.key, name, reference) : metadata.deleteTag(this.key, name, reference);
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not cached in ${this.key}`, detail: { name, reference } });
  }

  async #cachedSize(name: string, digest: string): Promise<number | null> {
    const size = this.#store.metadata.blobSize(this.key, name, digest) ?? this.#store.metadata.blobSizeInRepository(this.key, digest);
    return size !== null && (await this.#store.blobs.size(digest)) === size ? size : null;
  }

  /** The foreign-layer descriptor of `digest` in a cached manifest of the image, when those are cached. */
  #foreignLayer(name: string, digest: string): Descriptor | null {
    if (!this.#config.foreignLayers.cache) return null;
    const content = this.#store.metadata.manifestWithForeignLayer(this.key, name, digest);
    return (content && parseManifest(content).foreign.find((layer) => layer.digest === digest)) || null;
  }

  async statBlob(name: string, digest: string, options: ReadOptions = {}): Promise<number> {
    const cached = await this.#cachedSize(name, digest);
    if (cached !== null) return cached;
    const foreign = this.#foreignLayer(name, digest);
    if (foreign) {
      allowedUrls(foreign, this.#config.foreignLayers.allow);
      return foreign.size;
    }
    if (options.fetch === false) throw notCached('BLOB_UNKNOWN', `blob ${digest}`, this.key);
    this.#upstream.knownMissing(`blob ${name}@${digest}`);
    const response = await this.#upstream.send('HEAD', name, `blobs/${digest}`);
    response.body.resume();
    if (response.status !== 200) throw await this.#upstream.refusal(response, `blob ${name}@${digest}`, 'BLOB_UNKNOWN');
    return Number(first(response.headers['content-length']));
  }

  async openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null, options: ReadOptions = {}): Promise<BlobRead> {
    const cached = await this.#cachedSize(name, digest);
    if (cached !== null) {
      const range = pickRange?.(cached) ?? null;
      this.stats.hits++;
      this.#store.metadata.notePull(this.key, name, digest, 'blob');
      return { size: cached, range, cache: 'HIT', stream: this.#served(await this.#reader.open(digest, cached, range ?? { start: 0, end: cached - 1 })) };
    }
    if (options.fetch === false) throw notCached('BLOB_UNKNOWN', `blob ${digest}`, this.key);
    const foreign = this.#foreignLayer(name, digest);
    if (!foreign) this.#upstream.knownMissing(`blob ${name}@${digest}`);
    const { download, started } = await this.#downloads.join(digest, {
      fetch: async () => {
        if (foreign) return fetchForeignLayer(foreign, this.#config.foreignLayers.allow, this.#config.timeouts.response);
        const response = await this.#upstream.send('GET', name, `blobs/${digest}`);
        if (response.status !== 200) throw await this.#upstream.refusal(response, `blob ${name}@${digest}`, 'BLOB_UNKNOWN');
        const length = first(response.headers['content-length']);
        return { size: length === undefined ? null : Number(length), body: response.body };
      },
      onBytes: (bytes) => { this.stats.upstreamBytes += bytes; },
      onCommitted: (size) => {
        this.#store.metadata.linkBlob(this.key, name, digest, size);
        this.#enforceLimit(digest).catch((error: unknown) => this.#log(`${this.key}: cache eviction failed: ${String(error)}`));
      },
    });
    const size = download.size;
    const range = size !== null ? pickRange?.(size) ?? null : null;
    const stream = this.#served(download.reader(range ?? { start: 0, end: size === null ? Number.MAX_SAFE_INTEGER : size - 1 }));
    if (started) this.stats.misses++;
    else this.stats.joins++;
    return { size, range, cache: started ? 'MISS' : 'JOIN', stream };
  }

  /**
   * Keeps the cache within cache.maxSize: unlinks the least recently pulled blobs (never `keep`,
   * the one just fetched) and removes the bytes of those no image links any more, so a blob that
   * a local repository also holds stays on disk.
   */
  async #enforceLimit(keep: string): Promise<void> {
    const max = this.#config.cache.maxSize;
    if (max === null) return;
    const metadata = this.#store.metadata;
    let total = metadata.repositoryBytes(this.key);
    for (const blob of total > max ? metadata.leastRecentlyPulled(this.key, 10_000) : []) {
      if (total <= max) break;
      if (blob.digest === keep) continue;
      metadata.unlinkBlob(this.key, blob.name, blob.digest);
      total -= blob.size;
      if (metadata.blobLinks(blob.digest) === 0) await this.#store.blobs.delete(blob.digest);
      this.stats.evictions++;
    }
  }

  async deleteBlob(name: string, digest: string): Promise<void> {
    if (!this.#store.metadata.unlinkBlob(this.key, name, digest)) {
      throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not cached in ${this.key}/${name}`, detail: { digest } });
    }
  }

  async close(): Promise<void> {
    await this.#upstream.close();
  }

  async listTags(name: string, page: Page, options: ReadOptions = {}): Promise<Listing<string>> {
    if (options.fetch === false) {
      // The tags cached here, without asking the upstream.
      const rows = this.#store.metadata.listTags(this.key, name, { ...page, n: page.n + 1 });
      return rows.length > page.n ? { items: rows.slice(0, page.n), more: true } : { items: rows, more: false };
    }
    const query = new URLSearchParams({ n: String(page.n + 1), ...(page.last ? { last: page.last } : {}) });
    const response = await this.#upstream.send('GET', name, `tags/list?${query}`);
    if (response.status !== 200) throw await this.#upstream.refusal(response, `image ${name}`, 'NAME_UNKNOWN');
    const tags = ((JSON.parse((await readBody(response, 16 << 20)).toString('utf8')) as { tags?: string[] | null }).tags ?? [])
      .filter((tag) => !page.last || tag > page.last).sort();
    return tags.length > page.n ? { items: tags.slice(0, page.n), more: true } : { items: tags, more: false };
  }

  async listImages(page: Page): Promise<Listing<string>> {
    const rows = this.#store.metadata.listImages(this.key, { ...page, n: page.n + 1 });
    return rows.length > page.n ? { items: rows.slice(0, page.n), more: true } : { items: rows, more: false };
  }

  async referrers(name: string, digest: string, options: ReadOptions = {}): Promise<Descriptor[]> {
    const key = `${name}\u0000${digest}`;
    const cached = this.#referrers.get(key);
    if (options.fetch === false) return cached?.descriptors ?? [];
    if (cached && Date.now() - cached.at < this.#config.metadataTtl) return cached.descriptors;
    let descriptors: Descriptor[];
    try {
      const response = await this.#upstream.send('GET', name, `referrers/${digest}`);
      if (response.status === 404) {
        // An upstream without the referrers API: nothing refers to anything there.
        response.body.resume();
        descriptors = [];
      } else if (response.status !== 200) {
        throw await this.#upstream.refusal(response, `referrers of ${digest}`, 'MANIFEST_UNKNOWN');
      } else {
        descriptors = (JSON.parse((await readBody(response, maxManifestBytes)).toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
      }
    } catch (error) {
      if (cached && this.#config.serveStale) return cached.descriptors;
      throw error;
    }
    this.#referrers.set(key, { at: Date.now(), descriptors });
    return descriptors;
  }
}
