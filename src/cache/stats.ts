// Counters of one caching repository, for /metrics and for operators' questions ("is the
// mirror doing its job?"). Plain numbers in an object the repository owns.

export interface CacheStats {
  hits: number;
  misses: number;
  /** Requests that joined a download already in flight instead of starting one. */
  joins: number;
  /** Cached tags served because the upstream failed. */
  stale: number;
  upstreamBytes: number;
  servedBytes: number;
  upstreamErrors: number;
  /** Blobs dropped from the cache to stay within its size limit. */
  evictions: number;
  /** Docker Hub's ratelimit-remaining, as last seen; null until an upstream sends it. */
  rateLimitRemaining: number | null;
}

export function newCacheStats(): CacheStats {
  return { hits: 0, misses: 0, joins: 0, stale: 0, upstreamBytes: 0, servedBytes: 0, upstreamErrors: 0, evictions: 0, rateLimitRemaining: null };
}
