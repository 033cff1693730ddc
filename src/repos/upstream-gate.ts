import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { RegistryError } from '../oci/errors.js';
import type { CacheStats } from '../cache/stats.js';
import type { RemoteRepositoryConfig } from '../config/types.js';
import { readBody } from '../upstream/body.js';
import { UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import type { GetElsewhere } from '../upstream/foreign.js';
import type { TokenStore } from '../upstream/tokens.js';
import { localBreaker, type BreakerSettings, type CircuitBreaker } from './breaker.js';
import type { ManifestFlights } from './manifest-flights.js';

/** Names a repository's tokens by its key and a hash of its upstream and credentials (a reload that changes them starts afresh). */
function tokenOwner(key: string, config: RemoteRepositoryConfig): string {
  return `${key}:${createHash('sha256').update(JSON.stringify([config.url, config.username ?? null, config.password ?? null])).digest('hex')}`;
}

/** Upstream state every worker must share (server/shared-state.ts); absent: this process's own. */
export interface SharedUpstreamState {
  /**
   * The token store of `owner`: one repository with one set of credentials (a token fetched with
   * one repository's credentials must never serve another's requests).
   */
  tokens(owner: string): TokenStore;
  breaker(key: string, settings: BreakerSettings): CircuitBreaker;
  /** Which process fetches a manifest several ask for at once. */
  manifests: ManifestFlights;
}

// What a remote repository asks its upstream goes through here: Docker Hub's name mapping, the
// circuit breaker (after offlineAfter consecutive failures the upstream is not asked for
// retryAfter), a short-lived memory of 404s, and the mapping of the upstream's refusals to
// registry errors that name the upstream.

const dockerHubHosts = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com']);

export function isDockerHub(url: string): boolean {
  return dockerHubHosts.has(new URL(url).hostname);
}

/** Docker Hub keeps official images under library/: "alpine" is "library/alpine" there. */
export function upstreamImageName(dockerHub: boolean, name: string): string {
  return dockerHub && !name.includes('/') ? `library/${name}` : name;
}

/** How long an upstream 404 is remembered, so clients probing for what is not there cost nothing. */
const notFoundTtlMs = 30_000;

/** Docker Hub's anonymous allowance is 100 pulls per 6 hours: say so when little is left. */
const lowRateLimit = 10;

export function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The upstream's token endpoint refused the configured credentials (it answered: it is up). */
function refusedCredentials(error: unknown): boolean {
  return error instanceof RegistryError && error.code === 'UNAUTHORIZED';
}

/** Told how long each upstream request took to answer, and whether it failed (metrics). */
export type UpstreamObserver = (seconds: number, outcome: 'ok' | 'error') => void;

export class UpstreamGate {
  readonly #key: string;
  readonly #config: RemoteRepositoryConfig;
  readonly #stats: CacheStats;
  readonly #log: (message: string) => void;
  readonly #observe: UpstreamObserver;
  readonly #client: UpstreamClient;
  readonly #dockerHub: boolean;
  /** Upstream 404s by what was asked, with their expiry (a short-lived negative cache). */
  readonly #notFound: LRUCache<string, RegistryError>;
  readonly #breaker: CircuitBreaker;
  readonly #now: () => number;

  /** `now`: the clock of the breaker and the 404 memory (tests move it instead of waiting). */
  constructor(options: { key: string; config: RemoteRepositoryConfig; stats: CacheStats; log: (message: string) => void; now: () => number; observe?: UpstreamObserver; shared?: SharedUpstreamState }) {
    this.#now = options.now;
    this.#notFound = new LRUCache<string, RegistryError>({ max: 10_000, ttl: notFoundTtlMs, perf: { now: options.now } });
    this.#observe = options.observe ?? (() => undefined);
    this.#key = options.key;
    this.#config = options.config;
    this.#stats = options.stats;
    this.#log = options.log;
    this.#dockerHub = isDockerHub(options.config.url);
    const { url, username, password, timeouts, offlineAfter, retryAfter } = options.config;
    this.#breaker = options.shared?.breaker(options.key, { offlineAfter, retryAfter }) ?? localBreaker({ offlineAfter, retryAfter });
    this.#client = new UpstreamClient({
      url, username, password, timeouts,
      ...(options.shared ? { tokens: options.shared.tokens(tokenOwner(options.key, options.config)) } : {}),
      onRateLimit: (remaining) => {
        if (remaining < lowRateLimit && (this.#stats.rateLimitRemaining ?? Infinity) >= lowRateLimit) {
          this.#log(`${this.#key}: upstream ${url} rate limit nearly spent: ${remaining} pulls remaining`);
        }
        this.#stats.rateLimitRemaining = remaining;
      },
    });
  }

  /** Sends to the upstream unless it is marked offline; counts failures for the circuit breaker. */
  async send(method: 'GET' | 'HEAD', name: string, suffix: string, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    if (this.#now() < this.#breaker.offlineUntil) {
      throw new RegistryError('UNKNOWN', { status: 503, message: `upstream ${this.#config.url} of ${this.#key} is marked offline after ${this.#breaker.failures} failures; retrying after ${new Date(this.#breaker.offlineUntil).toISOString()}` });
    }
    const upstreamName = upstreamImageName(this.#dockerHub, name);
    const startedAt = performance.now();
    const elapsed = () => (performance.now() - startedAt) / 1000;
    let response: UpstreamResponse | null = null;
    try {
      response = await this.#client.send({ method, path: `/v2/${upstreamName}/${suffix}`, scope: `repository:${upstreamName}:pull`, headers });
      this.#observe(elapsed(), response.status >= 500 ? 'error' : 'ok');
      if (response.status >= 500) {
        response.body.resume();
        throw new RegistryError('UNKNOWN', { status: 502, message: `upstream ${this.#config.url} answered ${response.status}` });
      }
      this.#breaker.succeeded();
      return response;
    } catch (error) {
      if (response === null) this.#observe(elapsed(), 'error'); // no answer at all
      this.#stats.upstreamErrors++;
      this.#log(`${this.#key}: ${method} ${suffix.split('?', 1)[0]} of ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      // A refusal of the configured credentials is an answer: the upstream is up, the breaker stays shut.
      if (!refusedCredentials(error) && this.#breaker.failed(this.#now())) {
        this.#log(`${this.#key}: upstream ${this.#config.url} marked offline for ${this.#config.retryAfter / 1000}s after ${this.#breaker.failures} failures`);
      }
      throw error;
    }
  }

  /**
   * Maps the upstream's refusals to registry errors naming the upstream (and quoting it, for 429).
   * A 404 is remembered for a short while under `what`.
   */
  async refusal(response: UpstreamResponse, what: string, notFound: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'NAME_UNKNOWN'): Promise<RegistryError> {
    const text = await readBody(response, 64 << 10).then((b) => b.toString('utf8'), () => '');
    const upstream = this.#config.url;
    if (response.status === 404) {
      const error = new RegistryError(notFound, { message: `${what} is not in ${this.#key} (upstream ${upstream} has none)` });
      this.#notFound.set(what, error);
      return error;
    }
    if (response.status === 429) {
      let said = text.trim();
      try {
        said = (JSON.parse(text) as { errors?: { message?: string }[] }).errors?.[0]?.message ?? said;
      } catch { /* not JSON: quote it as it is */ }
      return new RegistryError('TOOMANYREQUESTS', { message: `upstream ${upstream} refused ${what}: too many requests${said ? `: ${said}` : ''}` });
    }
    if (response.status === 401 || response.status === 403) return new RegistryError('DENIED', { message: `upstream ${upstream} refused ${what} (${response.status}); check ${this.#key}'s username and password` });
    return new RegistryError('UNKNOWN', { status: 502, message: `upstream ${upstream} answered ${response.status} for ${what}` });
  }

  /**
   * A GET of a foreign layer's URL on the upstream's connections and timeouts (upstream/foreign.ts).
   * That host is not the upstream: the breaker neither stops nor counts it.
   */
  readonly getElsewhere: GetElsewhere = (url) => this.#client.getElsewhere(url);

  /** Throws the remembered 404 for `what`, if the upstream said so recently. */
  knownMissing(what: string): void {
    const error = this.#notFound.get(what);
    if (error) throw error;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
