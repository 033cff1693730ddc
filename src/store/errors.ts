import { RegistryError } from '../oci/errors.js';

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

/**
 * Why a backend failed: `code` is all a caller is told (a SQLSTATE such as 53300, ECONNREFUSED,
 * ETIMEDOUT, HTTP 503): the backend's own words may name roles, databases, buckets or hosts, and
 * stay in `text`, for the server's log.
 */
export interface Cause {
  code: string;
  text: string;
}

/**
 * A storage backend that stops answering while the server runs: each request that needs it gets
 * 503 UNAVAILABLE with the cause's code (the client may retry; the backend's client reconnects by
 * itself), and the log says so, with the cause's text, once when it goes and once when it is back.
 */
export function outage(backend: string, log: (message: string) => void) {
  let down = false;
  return {
    failed(cause: Cause): RegistryError {
      if (!down) log(`${backend} is not reachable (${cause.text}): requests that need it answer 503 until it is back`);
      down = true;
      return new RegistryError('UNAVAILABLE', { message: `${backend} is not reachable; retry later`, detail: { reason: cause.code } });
    },
    answered(): void {
      if (down) log(`${backend} is reachable again`);
      down = false;
    },
  };
}
