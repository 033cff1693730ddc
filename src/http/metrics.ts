import type { CacheStats } from '../cache/stats.js';
import type { RepositorySet } from '../repos/set.js';

// GET /metrics in the Prometheus text format (version 0.0.4).

const counters: [keyof CacheStats, string, string][] = [
  ['hits', 'wharf_cache_hits_total', 'Requests served from the cache.'],
  ['misses', 'wharf_cache_misses_total', 'Requests that fetched from the upstream.'],
  ['joins', 'wharf_cache_joins_total', 'Requests that joined an upstream fetch already in flight.'],
  ['stale', 'wharf_cache_stale_total', 'Cached tags served because the upstream failed.'],
  ['upstreamBytes', 'wharf_upstream_bytes_total', 'Blob bytes received from the upstream.'],
  ['servedBytes', 'wharf_served_bytes_total', 'Blob bytes sent to clients.'],
  ['upstreamErrors', 'wharf_upstream_errors_total', 'Upstream requests that failed (connection errors, timeouts, 5xx).'],
  ['evictions', 'wharf_cache_evictions_total', 'Blobs dropped from the cache to stay within cache.maxSize.'],
];

export function renderMetrics(repositories: RepositorySet): string {
  const withStats = repositories.all().filter((r) => r.stats);
  const lines: string[] = [];
  for (const [field, name, help] of counters) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const repository of withStats) lines.push(`${name}{repository="${repository.key}"} ${repository.stats![field] ?? 0}`);
  }
  lines.push('# HELP wharf_upstream_ratelimit_remaining Pulls left in the upstream rate-limit window (Docker Hub).', '# TYPE wharf_upstream_ratelimit_remaining gauge');
  for (const repository of withStats) {
    const remaining = repository.stats!.rateLimitRemaining;
    if (remaining !== null) lines.push(`wharf_upstream_ratelimit_remaining{repository="${repository.key}"} ${remaining}`);
  }
  return `${lines.join('\n')}\n`;
}
