import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { CacheStats } from '../cache/stats.js';
import type { RepositorySet } from '../repos/set.js';
import type { RequestRecord } from './observe.js';
import { countRequest, newTally, registerRequestMetrics, type RequestTally } from './request-metrics.js';

// GET /metrics, through prom-client on a registry server.ts creates and hands in (no global
// registry). Labels are bounded: route class (manifest, blob, upload, …), never raw paths;
// methods outside the HTTP set count as OTHER; repositories are the configured keys.
//
//   wharf_http_requests_total{route,method,status}               requests answered
//   wharf_http_request_duration_seconds{route,method,status}     latency histogram
//   wharf_http_request_body_bytes_total{route}                   request body bytes received
//   wharf_http_response_body_bytes_total{route}                  response body bytes sent
//   wharf_uploads_in_progress                                    upload sessions open
//   wharf_storage_bytes{repository}                              bytes of blobs each repository holds
//   wharf_cache_{hits,misses,joins,stale,evictions}_total{repository}, wharf_{upstream,served}_bytes_total,
//   wharf_upstream_errors_total, wharf_upstream_ratelimit_remaining   (names kept from before prom-client)
//   wharf_upstream_request_duration_seconds{repository,outcome}  upstream latency (ok, error)
//   wharf_tags_removed_total{repository}                         tags maxUniqueTags removed (database: every node's and the CLI's)
//   wharf_downloads_memory_bytes                                 upstream bytes cold pulls hold in memory
//   wharf_downloads_memory_limit_bytes                           downloads.memory (workers: each its share)
//   process_*, nodejs_*                                          prom-client's process metrics

export interface MetricsSources {
  /** The current repositories (a reload may change them). */
  repositories: () => RepositorySet;
  /** Bytes each repository holds, by key (read at scrape time). */
  storageBytes: () => Record<string, number> | Promise<Record<string, number>>;
  /** Tags maxUniqueTags removed, by repository key (read at scrape time). */
  tagsRemoved: () => Promise<Record<string, number>>;
  /** Upload sessions started and not yet finished or cancelled. */
  openUploads: () => number | Promise<number>;
  /** The cold pulls' memory window (downloads.memory; with workers, this worker's share). */
  downloadMemory: { held: () => number; limit: number };
  /** With workers: every worker's metrics aggregated by the primary (prom-client's AggregatorRegistry). */
  render?: () => Promise<string>;
}

export interface Metrics {
  /** Counts one answered request. */
  record(request: RequestRecord): void;
  /** Times upstream requests of one remote repository. */
  upstream(repository: string): (seconds: number, outcome: 'ok' | 'error') => void;
  render(): Promise<string>;
  contentType: string;
}

const cacheCounters: [keyof CacheStats, string, string][] = [
  ['hits', 'wharf_cache_hits_total', 'Requests served from the cache.'],
  ['misses', 'wharf_cache_misses_total', 'Requests that fetched from the upstream.'],
  ['joins', 'wharf_cache_joins_total', 'Requests that joined an upstream fetch already in flight.'],
  ['stale', 'wharf_cache_stale_total', 'Cached tags served because the upstream failed.'],
  ['upstreamBytes', 'wharf_upstream_bytes_total', 'Blob bytes received from the upstream.'],
  ['servedBytes', 'wharf_served_bytes_total', 'Blob bytes sent to clients.'],
  ['upstreamErrors', 'wharf_upstream_errors_total', 'Upstream requests that failed (connection errors, timeouts, 5xx), and blob fills the upstream failed (cut off, wrong bytes).'],
  ['evictions', 'wharf_cache_evictions_total', 'Blobs dropped from the cache to stay within cache.maxSize.'],
];

const httpMethods = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS']);

export function createMetrics(registry: Registry, sources: MetricsSources): Metrics {
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const upstreamDuration = new Histogram({
    name: 'wharf_upstream_request_duration_seconds', help: 'Time to an upstream answer (headers), by remote repository and outcome.', labelNames: ['repository', 'outcome'], registers,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  // Counted in the database where the tags are removed, so pushes on every node and `wharf
  // promote` are in it; the same in every worker (and on every node): aggregated as one value.
  new Counter({
    name: 'wharf_tags_removed_total', help: 'Tags removed because an image exceeded its repository\'s maxUniqueTags.', labelNames: ['repository'], registers, aggregator: 'first',
    async collect() {
      this.reset();
      const removed = await sources.tagsRemoved();
      for (const repository of sources.repositories().keys) if (removed[repository]) this.inc({ repository }, removed[repository]);
    },
  });
  new Gauge({
    // Read from the database, the same in every worker: aggregated as one value, not a sum.
    name: 'wharf_uploads_in_progress', help: 'Upload sessions started and not yet finished or cancelled.', registers, aggregator: 'first',
    async collect() { this.set(await sources.openUploads()); },
  });
  new Gauge({
    name: 'wharf_storage_bytes', help: 'Bytes of blobs each repository holds (a blob shared by two counts in both).', labelNames: ['repository'], registers, aggregator: 'first',
    async collect() {
      this.reset();
      for (const [repository, bytes] of Object.entries(await sources.storageBytes())) this.set({ repository }, bytes);
    },
  });
  // Summed over workers: together they hold what one process would, within downloads.memory.
  new Gauge({
    name: 'wharf_downloads_memory_bytes', help: 'Upstream bytes cold pulls hold in memory (ahead of their disk writers, or not yet sent to all their clients).', registers,
    collect() { this.set(sources.downloadMemory.held()); },
  });
  new Gauge({
    name: 'wharf_downloads_memory_limit_bytes', help: 'What cold pulls may hold in memory together (downloads.memory).', registers,
    collect() { this.set(sources.downloadMemory.limit); },
  });
  const cached = () => sources.repositories().all().filter((repository) => repository.stats);
  for (const [field, name, help] of cacheCounters) {
    new Counter({
      name, help, labelNames: ['repository'], registers,
      collect() {
        this.reset();
        for (const repository of cached()) this.inc({ repository: repository.key }, repository.stats![field] as number);
      },
    });
  }
  new Gauge({
    name: 'wharf_upstream_ratelimit_remaining', help: 'Pulls left in the upstream rate-limit window (Docker Hub).', labelNames: ['repository'], registers, aggregator: 'min',
    collect() {
      this.reset();
      for (const repository of cached()) if (repository.stats!.rateLimitRemaining !== null) this.set({ repository: repository.key }, repository.stats!.rateLimitRemaining);
    },
  });
  // One tally per label set, found by a string key: the request path only adds numbers.
  const tallies = new Map<string, RequestTally>();
  registerRequestMetrics(registry, () => tallies.values());
  return {
    record(request) {
      const method = httpMethods.has(request.method) ? request.method : 'OTHER';
      const key = `${request.routeClass} ${method} ${request.status}`;
      let tally = tallies.get(key);
      if (!tally) {
        tally = newTally({ route: request.routeClass, method, status: String(request.status) });
        tallies.set(key, tally);
      }
      countRequest(tally, request.seconds, request.bytesIn, request.bytesOut);
    },
    upstream(repository) {
      return (seconds, outcome) => upstreamDuration.observe({ repository, outcome }, seconds);
    },
    render: sources.render ?? (() => registry.metrics()),
    contentType: registry.contentType,
  };
}
