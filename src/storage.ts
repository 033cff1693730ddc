import { prepareDirectory } from './config/directories.js';
import type { Config } from './config/types.js';
import { StorageConnectError } from './store/errors.js';
import type { CollectPolicy } from './store/gc.js';
import { dataDirMode, openMetadataOf, openStore, type Metadata, type Store, type StoreOptions } from './store/index.js';

// The bridge from the configuration to the store, for the server and for `wharf gc`.

/** A backend that cannot be reached is reported with its configuration key. */
function namingTheKey(error: unknown): unknown {
  if (!(error instanceof StorageConnectError)) return error;
  const key = error.setting === 'credentials' ? 'accessKeyId' : error.setting;
  return new Error(`storage.${error.component}.${key}: ${error.message}`);
}

/**
 * PostgreSQL connections a node opens at most, split between its processes (the primary and each
 * worker, at least 2 each): with `workers: auto` on several nodes, one pool of 10 per process would
 * soon pass the server's max_connections (100 by default).
 */
const nodeConnections = 10;

/** Opens the configured storage; `processes`: how many processes of this node open it (the primary and its workers). */
export async function openConfiguredStore(config: Config, options: Pick<StoreOptions, 'recover' | 'log' | 'now' | 'hooks' | 'sessionLocks'> & { processes?: number }): Promise<Store> {
  const { blobs, metadata } = config.storage;
  await prepareDirectory(config.dataDir, 'dataDir', { mode: dataDirMode });
  const { processes = 1, ...rest } = options;
  try {
    return await openStore({ dataDir: config.dataDir, blobs, metadata, connections: Math.max(2, Math.ceil(nodeConnections / processes)), ...rest });
  } catch (error) {
    throw namingTheKey(error);
  }
}

/** Opens only the configured metadata database (`wharf user`, `wharf token`): no blobs, no recovery. */
export async function openConfiguredMetadata(config: Config): Promise<Metadata> {
  if (config.storage.metadata.driver === 'sqlite') await prepareDirectory(config.dataDir, 'dataDir', { mode: dataDirMode });
  try {
    return await openMetadataOf({ dataDir: config.dataDir, metadata: config.storage.metadata });
  } catch (error) {
    throw namingTheKey(error);
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
