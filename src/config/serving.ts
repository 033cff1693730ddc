import { ConfigError } from './errors.js';
import { boolean, byteSize, describe, mapping, positiveInteger } from './fields.js';
import type { StorageConfig } from './types.js';

// How Wharf spends the machine: worker processes, the reverse proxy's sendfile, and the memory
// cold pulls may run ahead of the disk in.

export const servingKeys = ['workers', 'proxy', 'downloads'] as const;

export interface ServingConfig {
  /** Processes serving requests: 'auto' is one per core; 1 (the default) is this process alone (no cluster). */
  readonly workers: 'auto' | number;
  /** offload: blob GETs from a trusted proxy that offers it are answered with X-Accel-Redirect or X-Sendfile. */
  readonly proxy: { readonly offload: boolean };
  /** memory: bytes of upstream data all cold pulls together may hold ahead of the disk writer. */
  readonly downloads: { readonly memory: number };
}

export const defaultDownloadMemory = 256 * 1024 * 1024;

function workers(value: unknown): ServingConfig['workers'] {
  if (value === undefined) return 1;
  if (value === 'auto') return 'auto';
  try {
    return positiveInteger(value, 'workers');
  } catch {
    throw new ConfigError('workers', `expected auto or a whole number of at least 1, got ${describe(value)}`);
  }
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
