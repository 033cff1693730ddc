import { BlobReader } from '../cache/small-blobs.js';
import { RegistryError } from '../oci/errors.js';
import type { Config } from '../config/types.js';
import type { Store } from '../store/index.js';
import { BlobDownloads } from '../cache/downloads.js';
import { UpstreamClient } from '../upstream/client.js';
import { LocalRepository } from './local.js';
import { RemoteRepository } from './remote.js';
import type { Repository } from './repository.js';

/** The configured repositories, by key. */
export class RepositorySet {
  readonly #byKey: ReadonlyMap<string, Repository>;

  constructor(repositories: Iterable<Repository>) {
    this.#byKey = new Map([...repositories].map((repository) => [repository.key, repository]));
  }

  /** Builds every configured repository; remote ones get their own upstream client. */
  static fromConfig(config: Config, store: Store, log: (message: string) => void): { repositories: RepositorySet; clients: UpstreamClient[] } {
    const reader = new BlobReader(store.blobs);
    const downloads = new BlobDownloads(store.blobs);
    const clients: UpstreamClient[] = [];
    const repositories = Object.entries(config.repositories).map(([key, repositoryConfig]): Repository => {
      store.metadata.registerRepository(key, repositoryConfig.type);
      if (repositoryConfig.type === 'local') return new LocalRepository({ key, config: repositoryConfig, store, reader });
      const client = new UpstreamClient({
        url: repositoryConfig.url,
        username: repositoryConfig.username,
        password: repositoryConfig.password,
        timeouts: repositoryConfig.timeouts,
      });
      clients.push(client);
      return new RemoteRepository({ key, config: repositoryConfig, store, reader, downloads, client, log });
    });
    return { repositories: new RepositorySet(repositories), clients };
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
