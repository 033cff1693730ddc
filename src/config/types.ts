// The one typed configuration object. Nothing outside config/ reads YAML or process.env.

export interface ListenerConfig {
  readonly address: string;
  readonly port: number;
}

export interface LocalRepositoryConfig {
  readonly type: 'local';
  /** Refuse Docker schema1 manifests (deprecated, unsigned-by-default, no multi-arch). */
  readonly blockSchema1: boolean;
}

export type RepositoryConfig = LocalRepositoryConfig;

export interface Config {
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly listeners: readonly ListenerConfig[];
  readonly repositories: Readonly<Record<string, RepositoryConfig>>;
  readonly log: { readonly access: boolean };
}
