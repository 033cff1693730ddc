import { BlobReader } from '../cache/small-blobs.js';
import { RegistryError } from '../oci/errors.js';
import type { Config } from '../config/types.js';
import type { Store } from '../store/index.js';
import type { BlobDownloads } from '../cache/downloads.js';
import { LocalRepository } from './local.js';
import { RemoteRepository } from './remote.js';
import { ImageCatalog } from './catalog.js';
import { Promotion } from './promotion.js';
import type { Repository, TagsDropped } from './repository.js';
import { VirtualRepository } from './virtual.js';
import type { SharedUpstreamState, UpstreamObserver } from './upstream-gate.js';

export interface BuildOptions {
  /** The server's one set of cold-pull downloads (single-flight and memory window for every remote). */
  downloads: BlobDownloads;
  /** On a reload: the set and configuration before it (unchanged repositories are kept). */
  previous?: { set: RepositorySet; config: Config };
  /** Upstream latency of each remote repository, for metrics. */
  observeUpstream?: (key: string) => UpstreamObserver;
  /** Token cache and circuit breakers shared by every worker; absent: each repository's own. */
  shared?: SharedUpstreamState;
}

/** The configured repositories, by key. */
export class RepositorySet {
  readonly #byKey: ReadonlyMap<string, Repository>;
  /** Promotion between these repositories, tag info and search (null in a set built without a store). */
  readonly management: { promotion: Promotion; catalog: ImageCatalog } | null;

  constructor(repositories: Iterable<Repository>, management: RepositorySet['management'] = null) {
    this.#byKey = new Map([...repositories].map((repository) => [repository.key, repository]));
    this.management = management;
  }

  /**
   * Builds every configured repository over one store. With `previous` (a configuration reload),
   * repositories whose settings are unchanged are kept as they are, caches and connections included.
   */
  static fromConfig(config: Config, store: Store, log: (message: string) => void, options: BuildOptions): RepositorySet {
    const previous = options.previous;
    const reader = new BlobReader(store.blobs);
    const { downloads } = options;
    const built = new Map<string, Repository>();
    const onTagsDropped: TagsDropped = (event) => {
      log(`repositories.${event.repository}.maxUniqueTags (${event.limit}): removed the oldest tag(s) ${event.tags.join(', ')} of ${event.image}; their content goes at the next garbage collection`);
    };
    // Members before the virtual repositories over them (config/ has ruled out cycles). A virtual
    // repository holds no state of its own, so it is always built anew over the current members.
    const build = (key: string): Repository => {
      const existing = built.get(key);
      if (existing) return existing;
      const repositoryConfig = config.repositories[key]!;
      let repository: Repository;
      const kept = previous?.set.find(key);
      if (repositoryConfig.type !== 'virtual' && kept && JSON.stringify(previous!.config.repositories[key]) === JSON.stringify(repositoryConfig)) {
        repository = kept;
      } else if (repositoryConfig.type === 'local') {
        repository = new LocalRepository({ key, config: repositoryConfig, store, reader, onTagsDropped });
      } else if (repositoryConfig.type === 'remote') {
        repository = new RemoteRepository({ key, config: repositoryConfig, store, reader, downloads, log, ...(options.observeUpstream ? { observeUpstream: options.observeUpstream(key) } : {}), ...(options.shared ? { shared: options.shared } : {}) });
      } else {
        const members = repositoryConfig.repositories.map(build);
        const target = repositoryConfig.defaultDeploymentRepo;
        repository = new VirtualRepository({ key, config: repositoryConfig, members, deployment: target === null ? null : build(target) });
      }
      built.set(key, repository);
      return repository;
    };
    return new RepositorySet(Object.keys(config.repositories).map(build), {
      promotion: new Promotion({ store, repositories: config.repositories, onTagsDropped }),
      catalog: new ImageCatalog(store),
    });
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
