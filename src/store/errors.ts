/**
 * A storage backend that cannot be used at start-up. `setting` says which of its settings is the
 * likely culprit (the caller names the configuration key), `server` where it was looked for,
 * `reason` the cause.
 */
export class StorageConnectError extends Error {
  constructor(
    readonly component: 'metadata' | 'blobs',
    readonly server: string,
    readonly reason: string,
    readonly setting: 'url' | 'endpoint' | 'bucket' | 'credentials' = component === 'metadata' ? 'url' : 'endpoint',
  ) {
    super(`cannot connect to ${server}: ${reason}`);
    this.name = 'StorageConnectError';
  }
}

/** The error code (ENOSPC, ECONNREFUSED, …) or message of a failure, without paths or secrets. */
export function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code) return code;
  return error instanceof Error ? error.name : String(error);
}
