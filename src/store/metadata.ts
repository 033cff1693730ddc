import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import type { ParsedManifest } from '../oci/manifest.js';
import { schema } from './schema.js';

export interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
  /** Reads by tag: when the tag was last set. */
  pushed_at?: number;
}

export interface ReferrerRow {
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

export interface UploadRow {
  uuid: string;
  repo: string;
  name: string;
  started_at: number;
}

export interface Page {
  last?: string | undefined;
  n: number;
}

export interface ManifestLink {
  repo: string;
  name: string;
  manifest: ParsedManifest;
  content: Uint8Array;
  tag: string | null;
  /** Local pushes need every blob and child manifest present; a cache of an upstream does not. */
  requireReferences: boolean;
}

export interface BlobLinkRow {
  name: string;
  digest: string;
  size: number;
}

export interface TagState {
  digest: string;
  checked_at: number | null;
}

/** How long pull timestamps are gathered before they are written in one transaction. */
const pullFlushMs = 2000;

/** Manifest reads kept in memory; every write clears them, so a read never sees stale data. */
const readCacheBytes = 64 << 20;

/**
 * Metadata in SQLite (WAL, synchronous=FULL): every change is one transaction, so a crash leaves
 * the previous state or the new one. Statements are prepared once; the read paths are synchronous
 * and cost microseconds.
 */
export class MetadataStore {
  readonly #db: Database.Database;
  readonly #pulls = new Map<string, { kind: 'manifest' | 'blob'; repo: string; name: string; digest: string; at: number }>();
  #pullTimer: NodeJS.Timeout | null = null;
  readonly #reads = new LRUCache<string, ManifestRow>({ maxSize: readCacheBytes, sizeCalculation: (row) => row.size + 200 });

  readonly #statements;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.exec(schema);
    const db = this.#db;
    this.#statements = {
      upsertRepository: db.prepare('INSERT INTO repositories (key, kind, created_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET kind = excluded.kind'),
      manifestByDigest: db.prepare<[string, string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.size, m.content FROM repository_manifests r JOIN manifests m ON m.digest = r.digest
         WHERE r.repo = ? AND r.name = ? AND r.digest = ?`),
      manifestByTag: db.prepare<[string, string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.size, m.content, t.pushed_at FROM tags t JOIN manifests m ON m.digest = t.digest
         WHERE t.repo = ? AND t.name = ? AND t.tag = ?`),
      insertManifest: db.prepare(
        `INSERT OR IGNORE INTO manifests (digest, media_type, size, content, subject, artifact_type, annotations)
         VALUES (@digest, @mediaType, @size, @content, @subject, @artifactType, @annotations)`),
      insertReference: db.prepare('INSERT OR IGNORE INTO manifest_references (digest, target, kind) VALUES (?, ?, ?)'),
      linkManifest: db.prepare('INSERT INTO repository_manifests (repo, name, digest, pushed_at) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET pushed_at = excluded.pushed_at'),
      setTag: db.prepare('INSERT INTO tags (repo, name, tag, digest, pushed_at, checked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET digest = excluded.digest, pushed_at = excluded.pushed_at, checked_at = excluded.checked_at'),
      tagState: db.prepare<[string, string, string], TagState>('SELECT digest, checked_at FROM tags WHERE repo = ? AND name = ? AND tag = ?'),
      touchTag: db.prepare('UPDATE tags SET checked_at = ? WHERE repo = ? AND name = ? AND tag = ?'),
      hasManifest: db.prepare<[string, string, string], { one: number }>('SELECT 1 AS one FROM repository_manifests WHERE repo = ? AND name = ? AND digest = ?'),
      unlinkManifest: db.prepare('DELETE FROM repository_manifests WHERE repo = ? AND name = ? AND digest = ?'),
      deleteTagsOf: db.prepare('DELETE FROM tags WHERE repo = ? AND name = ? AND digest = ?'),
      deleteTag: db.prepare('DELETE FROM tags WHERE repo = ? AND name = ? AND tag = ?'),
      listTags: db.prepare<[string, string, string, number], { tag: string }>('SELECT tag FROM tags WHERE repo = ? AND name = ? AND tag > ? ORDER BY tag LIMIT ?'),
      hasImage: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM repository_manifests WHERE repo = ? AND name = ? LIMIT 1'),
      listImages: db.prepare<[string, string, number], { name: string }>('SELECT DISTINCT name FROM repository_manifests WHERE repo = ? AND name > ? ORDER BY name LIMIT ?'),
      referrers: db.prepare<[string, string, string], ReferrerRow>(
        `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m JOIN repository_manifests r ON r.digest = m.digest
         WHERE m.subject = ? AND r.repo = ? AND r.name = ? ORDER BY m.digest`),
      notePull: db.prepare('UPDATE repository_manifests SET pulled_at = ? WHERE repo = ? AND name = ? AND digest = ?'),
      blobLink: db.prepare<[string, string, string], { size: number }>('SELECT size FROM repository_blobs WHERE repo = ? AND name = ? AND digest = ?'),
      blobInRepository: db.prepare<[string, string], { size: number }>('SELECT size FROM repository_blobs WHERE repo = ? AND digest = ? LIMIT 1'),
      linkBlob: db.prepare('INSERT OR IGNORE INTO repository_blobs (repo, name, digest, size, linked_at) VALUES (?, ?, ?, ?, ?)'),
      unlinkBlob: db.prepare('DELETE FROM repository_blobs WHERE repo = ? AND name = ? AND digest = ?'),
      noteBlobPull: db.prepare('UPDATE repository_blobs SET pulled_at = ? WHERE repo = ? AND name = ? AND digest = ?'),
      repositoryBytes: db.prepare<[string], { bytes: number | null }>('SELECT SUM(size) AS bytes FROM repository_blobs WHERE repo = ?'),
      leastRecentlyPulled: db.prepare<[string, number], BlobLinkRow>('SELECT name, digest, size FROM repository_blobs WHERE repo = ? ORDER BY COALESCE(pulled_at, linked_at) LIMIT ?'),
      referencingForeign: db.prepare<[string, string, string], { content: Buffer }>(
        `SELECT m.content FROM manifest_references f JOIN repository_manifests r ON r.digest = f.digest JOIN manifests m ON m.digest = f.digest
         WHERE f.target = ? AND f.kind = 'foreign' AND r.repo = ? AND r.name = ? LIMIT 1`),
      blobLinks: db.prepare<[string], { links: number }>('SELECT COUNT(*) AS links FROM repository_blobs WHERE digest = ?'),
      insertUpload: db.prepare('INSERT INTO uploads (uuid, repo, name, started_at) VALUES (?, ?, ?, ?)'),
      upload: db.prepare<[string], UploadRow>('SELECT uuid, repo, name, started_at FROM uploads WHERE uuid = ?'),
      deleteUpload: db.prepare('DELETE FROM uploads WHERE uuid = ?'),
      staleUploads: db.prepare<[number], { uuid: string }>('SELECT uuid FROM uploads WHERE started_at < ?'),
    };
  }

  registerRepository(key: string, kind: string): void {
    this.#statements.upsertRepository.run(key, kind, Date.now());
  }

  manifestByDigest(repo: string, name: string, digest: string): ManifestRow | undefined {
    return this.#cachedRead(`${repo}\u0000${name}\u0000${digest}`, () => this.#statements.manifestByDigest.get(repo, name, digest));
  }

  manifestByTag(repo: string, name: string, tag: string): ManifestRow | undefined {
    return this.#cachedRead(`${repo}\u0000${name}\u0000:${tag}`, () => this.#statements.manifestByTag.get(repo, name, tag));
  }

  #cachedRead(key: string, read: () => ManifestRow | undefined): ManifestRow | undefined {
    const cached = this.#reads.get(key);
    if (cached) return cached;
    const row = read();
    if (row) this.#reads.set(key, row);
    return row;
  }

  /** Runs a write in one transaction and forgets every cached read. */
  #write<T>(change: () => T): T {
    this.#reads.clear();
    return this.#db.transaction(change)();
  }

  /**
   * Stores a manifest and links it (and its tag) into an image, in one transaction. Returns the
   * references that are missing from the image instead of writing anything when there are any.
   */
  putManifest(link: ManifestLink): { missing: string[] } {
    const s = this.#statements;
    const { repo, name, manifest, content, tag, requireReferences } = link;
    return this.#write(() => {
      const missing = !requireReferences ? [] : [
        ...manifest.blobs.filter((digest) => !s.blobLink.get(repo, name, digest)),
        ...manifest.children.map((child) => child.digest).filter((digest) => !s.hasManifest.get(repo, name, digest)),
      ];
      if (missing.length > 0) return { missing };
      const now = Date.now();
      s.insertManifest.run({
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        size: content.length,
        content,
        subject: manifest.subject?.digest ?? null,
        artifactType: manifest.artifactType,
        annotations: manifest.annotations ? JSON.stringify(manifest.annotations) : null,
      });
      for (const blob of manifest.blobs) s.insertReference.run(manifest.digest, blob, 'blob');
      for (const child of manifest.children) s.insertReference.run(manifest.digest, child.digest, 'manifest');
      for (const layer of manifest.foreign) s.insertReference.run(manifest.digest, layer.digest, 'foreign');
      s.linkManifest.run(repo, name, manifest.digest, now);
      if (tag) s.setTag.run(repo, name, tag, manifest.digest, now, requireReferences ? null : now);
      return { missing: [] };
    });
  }

  /** Removes a manifest from an image with every tag that points to it. */
  deleteManifest(repo: string, name: string, digest: string): boolean {
    const s = this.#statements;
    return this.#write(() => {
      s.deleteTagsOf.run(repo, name, digest);
      return s.unlinkManifest.run(repo, name, digest).changes > 0;
    });
  }

  deleteTag(repo: string, name: string, tag: string): boolean {
    return this.#write(() => this.#statements.deleteTag.run(repo, name, tag).changes > 0);
  }

  listTags(repo: string, name: string, page: Page): string[] {
    return this.#statements.listTags.all(repo, name, page.last ?? '', page.n).map((row) => row.tag);
  }

  tagState(repo: string, name: string, tag: string): TagState | undefined {
    return this.#statements.tagState.get(repo, name, tag);
  }

  /** Records that the upstream confirmed a cached tag (no cached read changes). */
  touchTag(repo: string, name: string, tag: string): void {
    this.#statements.touchTag.run(Date.now(), repo, name, tag);
  }

  hasImage(repo: string, name: string): boolean {
    return this.#statements.hasImage.get(repo, name) !== undefined;
  }

  listImages(repo: string, page: Page): string[] {
    return this.#statements.listImages.all(repo, page.last ?? '', page.n).map((row) => row.name);
  }

  referrers(repo: string, name: string, subject: string): ReferrerRow[] {
    return this.#statements.referrers.all(subject, repo, name);
  }

  /** Records a pull of a manifest or blob; timestamps are written in batches so pulls never wait on a write. */
  notePull(repo: string, name: string, digest: string, kind: 'manifest' | 'blob' = 'manifest'): void {
    this.#pulls.set(`${kind}\u0000${repo}\u0000${name}\u0000${digest}`, { kind, repo, name, digest, at: Date.now() });
    this.#pullTimer ??= setTimeout(() => this.flushPulls(), pullFlushMs).unref();
  }

  flushPulls(): void {
    if (this.#pullTimer) clearTimeout(this.#pullTimer);
    this.#pullTimer = null;
    const pulls = [...this.#pulls.values()];
    this.#pulls.clear();
    this.#db.transaction(() => {
      for (const pull of pulls) {
        (pull.kind === 'manifest' ? this.#statements.notePull : this.#statements.noteBlobPull).run(pull.at, pull.repo, pull.name, pull.digest);
      }
    })();
  }

  blobSize(repo: string, name: string, digest: string): number | null {
    return this.#statements.blobLink.get(repo, name, digest)?.size ?? null;
  }

  /** Size of a blob linked to any image of the repository, or null. */
  blobSizeInRepository(repo: string, digest: string): number | null {
    return this.#statements.blobInRepository.get(repo, digest)?.size ?? null;
  }

  linkBlob(repo: string, name: string, digest: string, size: number): void {
    this.#statements.linkBlob.run(repo, name, digest, size, Date.now());
  }

  unlinkBlob(repo: string, name: string, digest: string): boolean {
    return this.#statements.unlinkBlob.run(repo, name, digest).changes > 0;
  }

  /** Bytes of the blobs linked into a repository. */
  repositoryBytes(repo: string): number {
    return this.#statements.repositoryBytes.get(repo)?.bytes ?? 0;
  }

  leastRecentlyPulled(repo: string, limit: number): BlobLinkRow[] {
    this.flushPulls();
    return this.#statements.leastRecentlyPulled.all(repo, limit);
  }

  /** A manifest of the image that lists `digest` as a foreign layer (its bytes), if any. */
  manifestWithForeignLayer(repo: string, name: string, digest: string): Buffer | undefined {
    return this.#statements.referencingForeign.get(digest, repo, name)?.content;
  }

  /** How many images, in any repository, link this blob. */
  blobLinks(digest: string): number {
    return this.#statements.blobLinks.get(digest)?.links ?? 0;
  }

  createUpload(row: UploadRow): void {
    this.#statements.insertUpload.run(row.uuid, row.repo, row.name, row.started_at);
  }

  upload(uuid: string): UploadRow | undefined {
    return this.#statements.upload.get(uuid);
  }

  deleteUpload(uuid: string): void {
    this.#statements.deleteUpload.run(uuid);
  }

  staleUploads(startedBefore: number): string[] {
    return this.#statements.staleUploads.all(startedBefore).map((row) => row.uuid);
  }

  close(): void {
    this.flushPulls();
    this.#db.close();
  }
}
