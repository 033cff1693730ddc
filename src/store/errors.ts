/**
 * A storage backend that cannot be reached at start-up. `component` says which setting names it
 * (the caller adds the configuration key), `server` where it was looked for, `reason` the cause.
 */
export class StorageConnectError extends Error {
  constructor(readonly component: 'metadata' | 'blobs', readonly server: string, readonly reason: string) {
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
