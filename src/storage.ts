import type { Config } from './config/types.js';
import { StorageConnectError } from './store/errors.js';
import type { CollectPolicy } from './store/gc.js';
import { openStore, type Store, type StoreOptions } from './store/index.js';

// The bridge from the configuration to the store, for the server and for `wharf gc`.

/** Opens the configured storage; a backend that cannot be reached is reported with its configuration key. */
export async function openConfiguredStore(config: Config, options: Pick<StoreOptions, 'recover' | 'log' | 'now' | 'hooks'>): Promise<Store> {
  const { blobs, metadata } = config.storage;
  try {
    return await openStore({ dataDir: config.dataDir, blobs, metadata, ...options });
  } catch (error) {
    if (!(error instanceof StorageConnectError)) throw error;
    const key = error.component === 'metadata' ? 'storage.metadata.url' : 'storage.blobs.endpoint';
    throw new Error(`${key}: ${error.message}`);
  }
}

/** Records the configured repositories and their kinds in the metadata. */
export async function registerRepositories(store: Store, config: Config): Promise<void> {
  for (const [key, repository] of Object.entries(config.repositories)) await store.metadata.images.register(key, repository.type);
}

/** What the collector may remove, from the repositories' settings. */
export function collectPolicy(config: Config): CollectPolicy {
  const local = Object.entries(config.repositories).filter(([, repository]) => repository.type === 'local');
  return {
    grace: config.gc.grace,
    uploadsExpireAfter: config.gc.uploadsExpireAfter,
    localRepositories: local.map(([key]) => key),
    untaggedRepositories: local.filter(([, repository]) => repository.type === 'local' && repository.gc.untagged === 'delete').map(([key]) => key),
  };
}
