import type { ImageSummary } from '../../oci/image-config.js';
import type { ParsedManifest } from '../../oci/manifest.js';

// The metadata seam: one async interface per concern, composed into `Metadata` with one
// transaction helper whose `tx` offers the same concerns, users and tokens (auth) among them.

export interface Page {
  last?: string | undefined;
  n: number;
}

export interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
}

export interface ReferrerRow {
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

export interface ImageRef {
  repo: string;
  name: string;
}

export interface ManifestPut extends ImageRef {
  manifest: ParsedManifest;
  content: Uint8Array;
  tag: string | null;
  now: number;
  /** Local pushes: the tag's platform tags, its maxUniqueTags limit, what the image config says. */
  rules?: TagRules;
  /** false: the tag may be created, or set again to this manifest, but not moved (a pusher without delete). Default true. */
  overwrite?: boolean;
  info?: ManifestInfo | null;
}

/** A platform tag (`<tag>-<os>-<arch>[-<variant>]`) and the child manifest it names. */
export interface PlatformTag {
  tag: string;
  digest: string;
}

/** What happens around a tag that is set (a push, a promotion) in a local repository. */
export interface TagRules {
  /** Platform tags that follow the tag (platformTags): replaced whenever the tag is set. */
  platformTags: PlatformTag[];
  /** maxUniqueTags: beyond this many tags (not counting platform tags) the oldest are removed; 0: no limit. */
  maxUniqueTags: number;
}

/** A tag that was set: where it points, when, and the index tag it follows (platform tags). */
export interface TagDetail {
  tag: string;
  digest: string;
  pushed_at: number;
  platform_of: string | null;
}

/** What a stored image's config says, extracted once when its manifest is stored. */
export interface ManifestInfo extends Omit<ImageSummary, 'details'> {
  /** The rest (ports, volumes, env, entrypoint, cmd, history with layers), as JSON. */
  details: string;
}

export interface BlobLinkRow {
  name: string;
  digest: string;
  size: number;
}

export interface BlobRow {
  digest: string;
  size: number;
  state: 'present' | 'deleting';
  touched_at: number;
}

export interface UploadRow {
  uuid: string;
  repo: string;
  name: string;
  started_at: number;
  /** The digest the session's bytes were being committed to, if a finish had begun. */
  committing: string | null;
}

/** Repositories and the images in them. */
export interface Images {
  register(key: string, kind: string): Promise<void>;
  exists(image: ImageRef): Promise<boolean>;
  list(repo: string, page: Page): Promise<string[]>;
  /** Removes every tag, manifest link and blob link of an image (the bytes wait for the collector). */
  remove(image: ImageRef): Promise<boolean>;
}

/** Manifests (content-addressed, shared) and the images that hold them. */
export interface Manifests {
  /** A manifest's bytes by digest, whoever holds it (immutable: served from memory once read). */
  content(digest: string): Promise<ManifestRow | undefined>;
  /** The manifest if the image holds it. */
  inImage(image: ImageRef, digest: string): Promise<ManifestRow | undefined>;
  /**
   * A local push: stores the manifest, links it (and its tag) into the image, in one transaction.
   * Every blob and child manifest must be in the image; otherwise nothing is written and the
   * missing digests are returned. The references it relies on are touched, so a concurrent
   * collection sees them in use. Without `overwrite`, a tag that names another manifest when the
   * transaction writes (pushed meanwhile too) leaves everything as it is: `taken`.
   */
  push(put: ManifestPut): Promise<{ missing: string[]; dropped: string[]; taken?: true }>;
  /** A remote cache fill: stores what the upstream sent, links it, and records the upstream's confirmation of the tag. */
  cache(put: ManifestPut): Promise<void>;
  /** Removes a manifest from an image with every tag that points to it. */
  unlink(image: ImageRef, digest: string, options?: UnlinkOptions): Promise<boolean>;
  referrers(image: ImageRef, subject: string): Promise<ReferrerRow[]>;
  /** A manifest of the image that lists `digest` as a foreign layer (its bytes), if any. */
  withForeignLayer(image: ImageRef, digest: string): Promise<Buffer | undefined>;
}

export interface UnlinkOptions {
  /** A DELETE: refused (409 DENIED) while a tagged manifest of the image needs it, through nested indexes too. */
  keepWhileTagged?: boolean;
}

export interface TagRow {
  digest: string;
  /** When the tag was last set (a virtual repository may prefer the newest). */
  pushed_at: number;
}

export interface ConfirmedTag extends TagRow {
  /** null: never confirmed. */
  confirmed_at: number | null;
}

export interface Tags {
  /** Where a tag points: always asked of the database (tags move). */
  get(image: ImageRef, tag: string): Promise<TagRow | undefined>;
  list(image: ImageRef, page: Page): Promise<string[]>;
  /** Every tag of the image, platform tags included, oldest push first. */
  details(image: ImageRef): Promise<TagDetail[]>;
  /** Removes a tag and the platform tags that follow it; with `digest`, only while the tag still names it. */
  remove(image: ImageRef, tag: string, digest?: string): Promise<boolean>;
  /**
   * Points a tag at a manifest the image holds, replacing its platform tags, then applies
   * maxUniqueTags; returns the tags that limit removed.
   */
  set(image: ImageRef, tag: string, digest: string, now: number, rules: TagRules): Promise<string[]>;
  /**
   * Takes a tag for `digest` until the transaction ends, while it is absent or names `digest` or
   * one of `replaces`; false (nothing changed) when it names another manifest. PostgreSQL: the
   * row, inserted if absent, stays locked, so a push of the tag beside the transaction waits, and
   * one committed first is seen.
   */
  hold(image: ImageRef, tag: string, digest: string, now: number, replaces: readonly string[]): Promise<boolean>;
  /** Tags maxUniqueTags has removed, by repository key, whoever pushed or promoted (every process, every node). */
  removedByLimit(): Promise<Record<string, number>>;
  /** Remote repositories: where the tag points and when the upstream last confirmed it, in one read (one snapshot). */
  getConfirmed(image: ImageRef, tag: string): Promise<ConfirmedTag | undefined>;
  confirm(image: ImageRef, tag: string, at: number): Promise<void>;
}

/** Which images hold which blobs (what a repository holds is links; the bytes are shared). */
export interface BlobLinks {
  size(image: ImageRef, digest: string): Promise<number | null>;
  /** Size of a blob linked to any image of the repository, or null. */
  sizeInRepository(repo: string, digest: string): Promise<number | null>;
  unlink(image: ImageRef, digest: string, options?: UnlinkOptions): Promise<boolean>;
  repositoryBytes(repo: string): Promise<number>;
  leastRecentlyPulled(repo: string, limit: number): Promise<BlobLinkRow[]>;
  /** The manifests of the image (with one of their tags, if any) that reference the blob. */
  referencedBy(image: ImageRef, digest: string): Promise<{ digest: string; tag: string | null }[]>;
}

/**
 * The stored-bytes registry: one row per digest whose bytes the store holds or is about to hold.
 * Only the store's blob lifecycle writes it.
 */
export interface Blobs {
  get(digest: string): Promise<BlobRow | undefined>;
  /**
   * Takes the digest before its bytes are committed: absent → inserted `present`; `present` →
   * touched; `deleting` while no collector holds the lease (a failed or killed run) → taken back
   * `present`. Either way the collector leaves it alone for its grace period. Returns 'deleting'
   * (and changes nothing) while a collector holds it.
   */
  claim(digest: string, size: number, now: number): Promise<'claimed' | 'deleting'>;
  /** Links a present blob into an image and touches it; false when the row is not present. */
  link(image: ImageRef, digest: string, size: number, now: number): Promise<boolean>;
}

export interface Uploads {
  create(row: Omit<UploadRow, 'committing'>): Promise<void>;
  get(uuid: string): Promise<UploadRow | undefined>;
  /** Records that the session's bytes are being committed as `digest` (start-up repair finishes it). */
  committing(uuid: string, digest: string): Promise<void>;
  remove(uuid: string): Promise<void>;
  all(): Promise<UploadRow[]>;
  startedBefore(time: number, limit: number): Promise<UploadRow[]>;
  /** Takes the session's lock for `holder` until `until`, unless another holder's lock lasts past `now`; whether it was taken. */
  lock(uuid: string, holder: string, until: number, now: number): Promise<boolean>;
  /** Moves the end of `holder`'s lock on. */
  renewLock(uuid: string, holder: string, until: number): Promise<void>;
  unlock(uuid: string, holder: string): Promise<void>;
}

/** Pull times (LRU eviction, statistics): gathered in memory, written in batches. */
export interface Pulls {
  /** A pull; `download`: a manifest GET (not a HEAD), counted as a download. */
  note(kind: 'manifest' | 'blob', image: ImageRef, digest: string, options?: { download?: boolean }): void;
  flush(): Promise<void>;
}

/** What a promotion copies: manifests and blobs an image holds (metadata only). */
export interface Closure {
  manifests: string[];
  blobs: { digest: string; size: number }[];
  /** Blobs and child manifests those manifests reference that the image does not hold (a remote cache not filled yet). */
  missing: string[];
}

/** Repository management: what promotion links, image info, download counts, search. */
export interface Management {
  /**
   * The manifests `digests` need in the image (themselves, their children, the referrers the
   * image holds of any of them, recursively) and the blobs those reference that the image links.
   */
  closure(image: ImageRef, digests: string[]): Promise<Closure>;
  /** Links manifests and blobs into an image (within a transaction); false when a blob or manifest is being collected. */
  link(image: ImageRef, closure: Closure, now: number): Promise<boolean>;
  /** Stores what an image config says about a manifest (once; a second call changes nothing). */
  putInfo(digest: string, info: ManifestInfo): Promise<void>;
  info(digests: string[]): Promise<(ManifestInfo & { digest: string })[]>;
  /** Pull statistics of a manifest in an image. */
  usage(image: ImageRef, digest: string): Promise<{ pushed_at: number; pulled_at: number | null; downloads: number } | undefined>;
  search(query: SearchQuery): Promise<SearchRow[]>;
}

/** Search over tags of local and remote repositories; every given key must match. */
export interface SearchQuery {
  repositories: string[];
  /** Image name: exact, or with * and ? wildcards. */
  image?: string;
  tag?: string;
  /** The tag's manifest digest, or the digest of a platform manifest of its index. */
  digest?: string;
  label?: { key: string; value?: string };
  /** Rows after this one (repo, name, tag), in that order. */
  after: [string, string, string] | null;
  limit: number;
}

export interface SearchRow {
  repo: string;
  name: string;
  tag: string;
  digest: string;
  pushed_at: number;
}

export interface UserRecord {
  name: string;
  /** scrypt$N$r$p$salt$hash (auth/passwords.ts); never a clear-text password. */
  passwordHash: string;
  groups: string[];
  admin: boolean;
  createdAt: number;
  updatedAt: number;
  passwordChangedAt: number;
}

export interface TokenRecord {
  id: string;
  owner: string;
  /** SHA-256 of the token's secret (auth/access-tokens.ts). */
  secretHash: string;
  scope: string[];
  expiresAt: number | null;
  description: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** The last removal of a user name: tokens of a user added at or before it were not issued to whoever has the name now. */
export interface RemovalRecord {
  name: string;
  /** Never before that user was added. */
  removedAt: number;
}

/** With a user added or removed (in the same transaction): removals before `forgetRemovalsBefore` are dropped. */
export interface ForgetRemovals {
  forgetRemovalsBefore?: number;
}

/** Users and access tokens; every change moves one counter that servers poll to reload. */
export interface Accounts {
  changeCounter(): Promise<number>;
  listUsers(): Promise<UserRecord[]>;
  getUser(name: string): Promise<UserRecord | null>;
  /** Adds a user; false when the name is taken. */
  addUser(user: UserRecord, options?: ForgetRemovals): Promise<boolean>;
  /** Sets a new password hash; false for an unknown user. */
  setPassword(name: string, passwordHash: string, at: number): Promise<boolean>;
  /** Removes a user, revokes their tokens and records the removal; false for an unknown user. */
  removeUser(name: string, at: number, options?: ForgetRemovals): Promise<boolean>;
  listRemovals(): Promise<RemovalRecord[]>;
  listTokens(): Promise<TokenRecord[]>;
  addToken(token: TokenRecord): Promise<void>;
  /** false for an unknown or already revoked token. */
  revokeToken(id: string, at: number): Promise<boolean>;
  noteTokenUses(uses: readonly { id: string; at: number }[]): Promise<void>;
}

/** What login attempts are allowed within a sliding window (auth.throttle). */
export interface LoginLimits {
  /** Attempts for one user name from one address. */
  perUser: number;
  perAddress: number;
  windowMs: number;
}

/** Login attempts counted for every process and node on the database (auth/throttle.ts has the rules). */
export interface LoginAttemptRecords {
  /**
   * Counts an attempt by `user` from `address` at `now`, and resolves with its id; unless the
   * pair's attempts within the window number `perUser` already, or the address's `perAddress`:
   * then nothing is counted, and it resolves with when the attempt that frees one leaves the
   * window. Atomic across nodes: reservations from one address take turns.
   */
  reserve(attempt: { user: string; address: string; now: number }, limits: LoginLimits): Promise<{ id: string } | { freedAt: number }>;
  /** The attempt succeeded: the pair's attempts no longer count, and this one not for the address either. */
  succeeded(attempt: { id: string; user: string; address: string }): Promise<void>;
}

export interface Concerns {
  readonly images: Images;
  readonly manifests: Manifests;
  readonly tags: Tags;
  readonly blobLinks: BlobLinks;
  readonly blobs: Blobs;
  readonly uploads: Uploads;
  readonly collector: CollectorQueries;
  readonly management: Management;
  readonly accounts: Accounts;
  readonly loginAttempts: LoginAttemptRecords;
}

export interface Metadata extends Concerns {
  readonly pulls: Pulls;
  transaction<T>(work: (tx: Concerns) => Promise<T>): Promise<T>;
  /** Runs `work` in a transaction that is always rolled back, without holding writers up for its length (a dry run). */
  rehearse<T>(work: (tx: Concerns) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A window of rows in key order: after this key (null: from the start), at most `size` rows. */
export interface Batch {
  after: string[] | null;
  size: number;
}

/** What a batch removed, and where the next window starts (null: this one reached the end). */
export interface Swept {
  removed: number;
  next: string[] | null;
}

/** What the garbage collector asks and changes; each call is one short transaction (a batch). */
export interface CollectorQueries {
  /**
   * Takes (or renews) the one collector lease until `expiresAt`. Returns null when this owner
   * holds it, else the current holder. `replacing` takes it over from a holder known to be dead.
   */
  lease(owner: string, now: number, expiresAt: number, replacing?: string): Promise<string | null>;
  release(owner: string): Promise<void>;
  /**
   * In the next window of `repo`'s manifests: removes those no tag names, no manifest of the same
   * image lists as a child, whose subject (if any) is not in the image, linked before `before`;
   * the conditions are checked again in the deleting statement.
   */
  sweepUntaggedManifests(repo: string, before: number, batch: Batch): Promise<Swept>;
  /** In the next window of `repo`'s blob links: removes those no manifest of their image references, linked before `before`. */
  sweepUnreferencedLinks(repo: string, before: number, batch: Batch): Promise<Swept>;
  /** In the next window of manifest rows: removes those no image holds any more (with their references). */
  sweepOrphanManifests(batch: Batch): Promise<Swept>;
  /**
   * In the next window of blob rows: marks `deleting` those that are present, linked nowhere,
   * referenced by no manifest and not touched since `before`, and returns them.
   */
  markUnusedBlobs(before: number, batch: Batch): Promise<{ marked: BlobRow[]; next: string[] | null }>;
  /** Rows left `deleting` (a collection interrupted after marking). */
  deleting(limit: number): Promise<BlobRow[]>;
  /** Of these digests, the ones with no row at all (bytes nobody registered). */
  unregistered(digests: string[]): Promise<string[]>;
  /** Inserts a `deleting` row for bytes nobody registered; false if a row appeared meanwhile. */
  claimUnregistered(digest: string, size: number, now: number): Promise<boolean>;
  /** Of these digests, those still `deleting` (a push takes back the rows of a run that lost its lease). */
  stillDeleting(digests: string[]): Promise<string[]>;
  /** Forgets blob rows whose bytes are gone. */
  forget(digests: string[]): Promise<void>;
}
