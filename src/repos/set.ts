import { BlobReader } from '../cache/small-blobs.js';
import { RegistryError } from '../oci/errors.js';
import type { Config } from '../config/types.js';
import type { Store } from '../store/index.js';
import { BlobDownloads } from '../cache/downloads.js';
import { LocalRepository } from './local.js';
import { RemoteRepository } from './remote.js';
import type { Repository } from './repository.js';

/** The configured repositories, by key. */
export class RepositorySet {
  readonly #byKey: ReadonlyMap<string, Repository>;

  constructor(repositories: Iterable<Repository>) {
    this.#byKey = new Map([...repositories].map((repository) => [repository.key, repository]));
  }

  /** Builds every configured repository over one store. */
  static async fromConfig(config: Config, store: Store, log: (message: string) => void): Promise<RepositorySet> {
    const reader = new BlobReader(store.blobs);
    const downloads = new BlobDownloads(store.blobs);
    for (const [key, repositoryConfig] of Object.entries(config.repositories)) await store.metadata.images.register(key, repositoryConfig.type);
    const repositories = Object.entries(config.repositories).map(([key, repositoryConfig]): Repository => {
      return repositoryConfig.type === 'local'
        ? new LocalRepository({ key, config: repositoryConfig, store, reader })
        : new RemoteRepository({ key, config: repositoryConfig, store, reader, downloads, log });
    });
    return new RepositorySet(repositories);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((repository) => repository.close?.()));
  }

  get keys(): string[] {
    return [...this.#byKey.keys()];
  }

  all(): Repository[] {
    return [...this.#byKey.values()];
  }

  find(key: string): Repository | undefined {
    return this.#byKey.get(key);
  }

  get(key: string): Repository {
    const repository = this.#byKey.get(key);
    if (!repository) {
      throw new RegistryError('NAME_UNKNOWN', {
        message: `no repository ${JSON.stringify(key)}; configured repository keys: ${this.keys.join(', ')}. Use HOST/<repoKey>/<image>, e.g. HOST/${this.keys[0]}/team/app`,
        detail: { repository: key, configured: this.keys },
      });
    }
    return repository;
  }
}
