import type { ServingConfig } from './serving.js';
import type { AuthConfig, PermissionTarget } from './auth.js';

// The one typed configuration object. Nothing outside config/ reads YAML or process.env.

export interface ListenerConfig {
  readonly address: string;
  readonly port: number;
  /**
   * none: plain HTTP; self-signed: TLS with a certificate from Wharf's own CA (certsDir); files:
   * the PEM pairs in `certificates`, chosen by SNI; acme: a certificate from the ACME directory
   * in the tls block's other keys (Config.acme).
   */
  readonly tls: 'none' | 'self-signed' | 'files' | 'acme';
  readonly certificates: readonly { readonly cert: string; readonly key: string }[];
  /** Port binding: every request on this listener goes to this repository. */
  readonly repository: string | null;
  /**
   * A mirror endpoint for several upstreams: upstream registry (containerd's ns parameter, e.g.
   * docker.io) → remote repository key; requests without ns are for docker.io (Docker's
   * registry-mirrors). null: not a mirror listener.
   */
  readonly mirrors: Readonly<Record<string, string>> | null;
  /** A plain listener that answers every request with a redirect to the first TLS listener. */
  readonly redirectToHttps: boolean;
}

export interface LocalRepositoryConfig {
  readonly type: 'local';
  /** Refuse Docker schema1 manifests (deprecated, unsigned-by-default, no multi-arch). */
  readonly blockSchema1: boolean;
  /** What the collector does with manifests no tag reaches: delete them (after gc.grace) or keep them. */
  readonly gc: { readonly untagged: 'delete' | 'keep' };
  /** Tags an image may have (platform tags not counted); a push beyond it removes the oldest. 0: no limit. */
  readonly maxUniqueTags: number;
  /** Also tag each platform image of an index pushed by tag as `<tag>-<os>-<arch>[-<variant>]`. */
  readonly platformTags: boolean;
}

export interface RemoteRepositoryConfig {
  readonly type: 'remote';
  /** The upstream registry's base URL; requests go to <url>/v2/…. */
  readonly url: string;
  readonly username: string | null;
  readonly password: string | null;
  /** How long a tag's digest is trusted before it is revalidated upstream (ms). */
  readonly metadataTtl: number;
  /** Serve cached tags when the upstream fails (with a Warning header). */
  readonly serveStale: boolean;
  /** Consecutive upstream failures after which it is treated as offline for retryAfter. */
  readonly offlineAfter: number;
  readonly retryAfter: number;
  readonly timeouts: { readonly connect: number; readonly response: number };
  /** Bytes of blobs the cache may hold; the least recently pulled go first. null: no limit. */
  readonly cache: { readonly maxSize: number | null };
  /** Foreign layers (descriptors with urls): fetched by Wharf from allowed URLs and cached. */
  readonly foreignLayers: { readonly cache: boolean; readonly allow: readonly string[] };
}

/** Certificates from an ACME directory (Let's Encrypt or any RFC 8555 CA), for tls mode acme. */
export interface AcmeConfig {
  /** The directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  readonly directory: string;
  /** Contact address for the account (expiry warnings from the CA). */
  readonly email: string | null;
  /**
   * How the CA checks control of the names: http-01 on a plain listener (port 80), or
   * tls-alpn-01 on the acme listener itself (port 443).
   */
  readonly challenge: 'http-01' | 'tls-alpn-01';
  /** The DNS names the certificate is for (given, or baseDomain and every <repoKey>.<baseDomain>). */
  readonly domains: readonly string[];
  /** Renew this long before expiry (ms); at most a third of the lifetime for short-lived certs. */
  readonly renewBefore: number;
  /** First retry after a failed order (ms); it doubles up to an hour. */
  readonly retryAfter: number;
  /** External account binding, for CAs that require one (ZeroSSL, Google, Sectigo). */
  readonly externalAccountBinding: { readonly kid: string; readonly hmacKey: string } | null;
  /** Extra CA certificate (PEM file) to trust for the directory's own HTTPS: a private ACME CA. */
  readonly caFile: string | null;
}

/**
 * One endpoint over an ordered list of other repositories (local, remote, virtual), with a local
 * member that receives pushes.
 */
export interface VirtualRepositoryConfig {
  readonly type: 'virtual';
  /** Member keys in configured order; resolution takes local members first, then remote ones. */
  readonly repositories: readonly string[];
  /** The local member pushes go to; null: pushes are refused, saying how to set one. */
  readonly defaultDeploymentRepo: string | null;
  /** A tag held by several members resolves to the most recently pushed one, not the first. */
  readonly resolveDockerTagsByTimestamp: boolean;
}

export type RepositoryConfig = LocalRepositoryConfig | RemoteRepositoryConfig | VirtualRepositoryConfig;

export interface StorageConfig {
  readonly blobs:
    | { readonly driver: 'filesystem' }
    | {
      readonly driver: 's3';
      /** null: AWS itself, in `region`. */
      readonly endpoint: string | null;
      readonly region: string;
      readonly bucket: string;
      readonly prefix: string;
      readonly accessKeyId: string | null;
      readonly secretAccessKey: string | null;
      readonly forcePathStyle: boolean;
      /** Answer blob GETs with a 307 to a presigned URL. */
      readonly redirect: boolean;
      /** Connecting, and waiting for the store's answer to a request (ms). */
      readonly timeouts: { readonly connect: number; readonly response: number };
    };
  readonly metadata:
    | { readonly driver: 'sqlite' }
    | {
      readonly driver: 'postgres';
      readonly url: string;
      /** Connecting, and waiting for the server's answer to a statement (ms). */
      readonly timeouts: { readonly connect: number; readonly response: number };
    };
}

export interface CollectorConfig {
  /** How often the collector runs in the server (ms); 0: only on demand. */
  readonly interval: number;
  /** Nothing written or referenced more recently than this is collected (ms). */
  readonly grace: number;
  /** Upload sessions started longer ago than this are dropped (ms). */
  readonly uploadsExpireAfter: number;
}

export interface Config extends ServingConfig {
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  /** Where TLS material lives (the generated CA and server certificate). */
  readonly certsDir: string;
  /** Subdomain access: <repoKey>.<baseDomain> reaches that repository. null: not used. */
  readonly baseDomain: string | null;
  /** Addresses or CIDR blocks of reverse proxies whose X-Forwarded-* headers are believed. */
  readonly trustedProxies: readonly string[];
  readonly listeners: readonly ListenerConfig[];
  /** The acme listeners' settings (one certificate for all of them); null without such a listener. */
  readonly acme: AcmeConfig | null;
  readonly repositories: Readonly<Record<string, RepositoryConfig>>;
  /**
   * A plain listener of its own for GET /metrics (and the probes), as Distribution's debug address:
   * then /metrics is not served on the registry listeners. null: /metrics on every listener.
   */
  readonly metrics: { readonly address: string; readonly port: number } | null;
  /** access: one line per request on stdout; format: text or JSON lines, for every log line. */
  readonly log: { readonly access: boolean; readonly format: 'text' | 'json' };
  readonly auth: AuthConfig;
  /** Artifactory-style permission targets; admins may do everything regardless. */
  readonly permissions: readonly PermissionTarget[];
  readonly storage: StorageConfig;
  readonly gc: CollectorConfig;
}
