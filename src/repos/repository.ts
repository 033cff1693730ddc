import type { Readable } from 'node:stream';
import type { AcceptedTypes } from '../oci/accept.js';
import type { CacheStats } from '../cache/stats.js';
import type { Descriptor } from '../oci/manifest.js';
import type { ByteRange, Page, UploadState, WrittenBlob } from '../store/index.js';

export type { ByteRange, Page, UploadState, WrittenBlob };

/** How a request was served from a cache, for the access log: hit, miss, joined a fetch, stale. */
export type CacheOutcome = 'HIT' | 'MISS' | 'JOIN' | 'STALE';

export interface Manifest {
  digest: string;
  mediaType: string;
  /** The exact stored bytes. Manifests are at most 4 MiB, so they travel as a buffer. */
  content: Buffer;
  cache?: CacheOutcome;
  /** A Warning header value (RFC 9111 §5.5), e.g. when a stale cached tag is served. */
  warning?: string;
  /** When the tag was last pushed (or, in a cache, last changed upstream), for timestamp resolution. */
  pushedAt?: number;
}

export interface PutManifestResult {
  digest: string;
  /** The subject's digest when the manifest has one (sent back as OCI-Subject). */
  subject: string | null;
  /** Not written: the tag names another manifest, and the push may not move it (`overwrite: false`). */
  taken?: true;
}

export interface PutManifestOptions {
  /** false: the tag may be created or set again to the same manifest, not moved; checked where it is written. Default true. */
  overwrite?: boolean;
  /**
   * Where blobs the manifest names but the image lacks may come from, as mounts (Uploads.mount): a
   * push through a virtual repository, whose blob HEADs tell the client what its members hold.
   */
  from?: BlobSource;
}

/** Rows (tags, image names) one page of a search or catalog reads at most, whatever the caller may read of them. */
export const maxScanned = 20_000;

export interface Listing<T> {
  items: T[];
  /** True when a next page exists (the handler then sends a Link header). */
  more: boolean;
  /** The page stopped at maxScanned names read, on this one: the next page goes on after it. */
  scannedTo?: T;
  /** A Warning header value, e.g. when cached tags are listed because the upstream failed. */
  warning?: string;
}

export interface BlobStream {
  /** null when not known yet (an upstream that sends no length): the body is then chunked. */
  size: number | null;
  cache?: CacheOutcome;
  /** The bytes being streamed, or null for the whole blob. */
  range: ByteRange | null;
  stream: Readable;
  /** A blob still being fetched (remote): settles once it is verified and in the store; rejects if the fetch fails. */
  stored?: () => Promise<void>;
}

/** A verified, committed blob the client may fetch from the object store directly (presigned URL). */
export interface BlobRedirect {
  size: number;
  cache?: CacheOutcome;
  redirect: string;
}

export type BlobRead = BlobStream | BlobRedirect;

export interface BlobSource {
  repository: Repository;
  name: string;
  /**
   * How the caller may read the source, as for any read (the HTTP layer's readOptionsFor): required,
   * since a virtual source without them would read every member and a remote one fetch for anyone.
   */
  options: ReadOptions;
}

/** Per-request options of reads. */
export interface ReadOptions {
  /**
   * Remote repositories: whether this request may fetch from the upstream (Artifactory's
   * Deploy/Cache permission). Default true; false serves only what is cached.
   */
  fetch?: boolean;
  /**
   * Virtual repositories: how the caller may read each member (its permissions are checked on the
   * member that serves the content), or null when the caller may not read that member at all.
   */
  member?: (member: Repository, name: string) => ReadOptions | null;
  /** A HEAD request: the manifest is not sent, so it is not counted as a download. */
  head?: boolean;
}

/** Tags a repository removed on its own (maxUniqueTags), for the log and metrics. */
export type TagsDropped = (event: { repository: string; image: string; tags: string[]; limit: number }) => void;

/** Blob uploads: a capability, present only on repositories that accept pushes. */
export interface Uploads {
  start(name: string): Promise<UploadState>;
  status(name: string, uuid: string): Promise<UploadState>;
  append(name: string, uuid: string, body: Readable, range?: ByteRange): Promise<UploadState>;
  finish(name: string, uuid: string, digest: string): Promise<WrittenBlob>;
  cancel(name: string, uuid: string): Promise<void>;
  /** A single-request upload (POST ?digest=). */
  monolithic(name: string, body: Readable, digest: string): Promise<WrittenBlob>;
  /**
   * Links a blob readable from `from` (or, without it, from any image of this repository); null
   * when it cannot. A source that has not stored the blob yet (a remote one) fetches it first.
   */
  mount(name: string, digest: string, from: BlobSource | null): Promise<WrittenBlob | null>;
}

/**
 * What every kind of repository offers (local, remote, virtual). Handlers call these without
 * asking which kind they hold; writes are optional capabilities, absent where not supported.
 * Methods throw RegistryError (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN, …).
 */
export interface Repository {
  readonly kind: 'local' | 'remote' | 'virtual';
  readonly key: string;

  getManifest(name: string, reference: string, accepted: AcceptedTypes, options?: ReadOptions): Promise<Manifest>;
  /** Size of a blob the image may read. */
  statBlob(name: string, digest: string, options?: ReadOptions): Promise<number>;
  /**
   * Opens a blob for reading. `pickRange` is called with the blob's size and returns the bytes
   * to stream (or throws, e.g. for an unsatisfiable Range); null means the whole blob.
   */
  openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null, options?: ReadOptions): Promise<BlobRead>;
  listTags(name: string, page: Page, options?: ReadOptions): Promise<Listing<string>>;
  /** Image names; with `options.member`, only those the caller may read in a virtual repository's members. */
  listImages(page: Page, options?: ReadOptions): Promise<Listing<string>>;
  referrers(name: string, digest: string, options?: ReadOptions): Promise<Descriptor[]>;

  putManifest?(name: string, reference: string, content: Buffer, contentType: string | undefined, options?: PutManifestOptions): Promise<PutManifestResult>;
  /** By tag: removes the tag. By digest: removes the manifest and every tag pointing to it. */
  deleteManifest?(name: string, reference: string): Promise<void>;
  deleteBlob?(name: string, digest: string): Promise<void>;
  /** Removes a whole image: its tags, manifests and blob links (the bytes go at the next collection). */
  deleteImage?(name: string): Promise<void>;
  readonly uploads?: Uploads;
  /**
   * Virtual repositories: the local member that writes land in (null: writes are refused). The
   * HTTP layer authorizes and performs a write there, so permissions apply where content lands.
   */
  readonly deployment?: Repository | null;
  /** Cache counters, on repositories that cache (remote). */
  readonly stats?: CacheStats;
  /** Releases connections (upstream pools). */
  close?(): Promise<void>;
}
