import { ConfigError } from './errors.js';
import { boolean, byteSize, describe, mapping } from './fields.js';
import type { StorageConfig } from './types.js';

// How Wharf spends the machine: worker processes, the reverse proxy's sendfile, and the memory
// cold pulls may run ahead of the disk in.

export const servingKeys = ['workers', 'proxy', 'downloads'] as const;

export interface ServingConfig {
  /** Processes serving requests: 1, this process (worker clusters are not implemented yet). */
  readonly workers: 1;
  /** offload: blob GETs from a trusted proxy that offers it are answered with X-Accel-Redirect or X-Sendfile. */
  readonly proxy: { readonly offload: boolean };
  /** memory: bytes of upstream data all cold pulls together may hold ahead of the disk writer. */
  readonly downloads: { readonly memory: number };
}

export const defaultDownloadMemory = 256 * 1024 * 1024;

/** Only one process serves yet: a worker cluster (auto or N > 1) is refused, not silently ignored. */
function workers(value: unknown): ServingConfig['workers'] {
  if (value === undefined || value === 1) return 1;
  throw new ConfigError('workers', `only 1 is supported yet (one process serves every request), got ${describe(value)}`);
}

export function servingConfig(node: Record<string, unknown>, context: { trustedProxies: readonly string[]; storage: StorageConfig }): ServingConfig {
  const proxy = node.proxy === undefined ? {} : mapping(node.proxy, 'proxy', ['offload']);
  const offload = proxy.offload === undefined ? false : boolean(proxy.offload, 'proxy.offload');
  if (offload && context.trustedProxies.length === 0) {
    throw new ConfigError('proxy.offload', 'needs trustedProxies: only requests from the proxy may be answered with X-Accel-Redirect or X-Sendfile');
  }
  if (offload && context.storage.blobs.driver !== 'filesystem') {
    throw new ConfigError('proxy.offload', 'needs storage.blobs.driver: filesystem (the proxy reads the blob files); with s3, use storage.blobs.redirect');
  }
  const downloads = node.downloads === undefined ? {} : mapping(node.downloads, 'downloads', ['memory']);
  return {
    workers: workers(node.workers),
    proxy: { offload },
    downloads: { memory: downloads.memory === undefined ? defaultDownloadMemory : byteSize(downloads.memory, 'downloads.memory') },
  };
}
