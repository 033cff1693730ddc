import { linkBlob } from './blobs.js';
import { lockRows, placeholders, type Db, type Sql } from './sql.js';
import type { Closure, ImageRef, Management, ManifestInfo, SearchQuery, SearchRow } from './types.js';

// Repository management over the metadata: what a promotion links (the closure of a manifest in
// an image), image info extracted from configs, pull statistics, and search over tags.

// A config's strings may hold anything JSON does, but PostgreSQL's text holds no NUL and its
// btree no entry over about 2.7 KB: NUL is stored (and searched for) as U+FFFD on both databases,
// a label value is indexed by its first 200 characters (schema migration 6), and a label whose
// key is longer than 512 characters (no real one is) is not stored.
const storable = <T extends string | null>(value: T): T => (value === null ? value : value.replace(/\0/g, '\uFFFD') as T);
const maxLabelKey = 512;

/** Stores a manifest's image info once (content-addressed: it never changes). */
export async function storeInfo(sql: Sql, digest: string, info: ManifestInfo): Promise<void> {
  const inserted = await sql.run(
    `INSERT INTO manifest_info (digest, config_digest, created, os, architecture, variant, size, info)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING`,
    [digest, info.configDigest, ...[info.created, info.os, info.architecture, info.variant].map(storable), info.size, info.details],
  );
  if (inserted === 0) return;
  for (const [key, value] of Object.entries(info.labels)) {
    if (key.length > maxLabelKey) continue;
    await sql.run('INSERT INTO manifest_labels (digest, key, value) VALUES ($1, $2, $3) ON CONFLICT (digest, key) DO NOTHING', [digest, storable(key), storable(value)]);
  }
}

interface InfoRow {
  digest: string;
  config_digest: string | null;
  created: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  size: number | string;
  info: string;
}

/**
 * `*` and `?` wildcards, matched case-sensitively like an exact name or tag: SQLite's GLOB takes
 * them as they are (its LIKE ignores ASCII case; names and tags hold no `[`), PostgreSQL's LIKE
 * as `%` and `_` (with \ escaping LIKE's own wildcards).
 */
function wildcard(sql: Sql, column: string, value: string, param: (value: unknown) => string): string {
  if (sql.dialect === 'sqlite') return `${column} GLOB ${param(value)}`;
  return `${column} LIKE ${param(value.replace(/[\\%_]/g, '\\$&').replace(/\*/g, '%').replace(/\?/g, '_'))} ESCAPE '\\'`;
}

export class SqlManagement implements Management {
  constructor(private readonly db: Db) {}

  async closure({ repo, name }: ImageRef, digests: string[]): Promise<Closure> {
    const { sql } = this.db;
    const seen = new Set<string>();
    let frontier = [...new Set(digests)];
    while (frontier.length > 0) {
      frontier.forEach((digest) => seen.add(digest));
      const list = placeholders(frontier.length, 2);
      const found = await sql.all<{ digest: string }>(
        `SELECT r.digest FROM repository_manifests r WHERE r.repo = $1 AND r.name = $2 AND (
           r.digest IN (SELECT f.target FROM manifest_references f WHERE f.kind = 'manifest' AND f.digest IN (${list}))
           OR r.digest IN (SELECT m.digest FROM manifests m WHERE m.subject IN (${list})))`,
        [repo, name, ...frontier],
      );
      frontier = [...new Set(found.map((row) => row.digest))].filter((digest) => !seen.has(digest));
    }
    const manifests = [...seen].sort();
    const blobs = await sql.all<{ digest: string; size: number | string }>(
      `SELECT DISTINCT b.digest, b.size FROM repository_blobs b JOIN manifest_references f ON f.target = b.digest AND f.kind = 'blob'
       WHERE b.repo = $1 AND b.name = $2 AND f.digest IN (${placeholders(manifests.length, 2)}) ORDER BY b.digest`,
      [repo, name, ...manifests],
    );
    // What those manifests reference that the image does not hold (a remote cache not yet filled).
    const missing = await sql.all<{ target: string }>(
      `SELECT DISTINCT f.target FROM manifest_references f WHERE f.digest IN (${placeholders(manifests.length, 2)}) AND (
         (f.kind = 'blob' AND NOT EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repo = $1 AND b.name = $2 AND b.digest = f.target))
         OR (f.kind = 'manifest' AND NOT EXISTS (SELECT 1 FROM repository_manifests r WHERE r.repo = $1 AND r.name = $2 AND r.digest = f.target)))
       ORDER BY f.target`,
      [repo, name, ...manifests],
    );
    return { manifests, blobs: blobs.map((row) => ({ digest: row.digest, size: Number(row.size) })), missing: missing.map((row) => row.target) };
  }

  async link(image: ImageRef, closure: Closure, now: number): Promise<boolean> {
    const { repo, name } = image;
    return this.db.atomic(async (sql) => {
      // As a push links them: a blob the collector holds is not linked.
      for (const blob of closure.blobs) if (!(await linkBlob(sql, image, blob.digest, blob.size, now))) return false;
      // A manifest the collector's orphan sweep is deleting (the source unlinked it meanwhile) is
      // not linked either; the share lock keeps the sweep from deleting it until this commits.
      if (closure.manifests.length > 0) {
        const present = await sql.all<{ digest: string }>(`SELECT digest FROM manifests WHERE digest IN (${placeholders(closure.manifests.length)})${lockRows(sql, 'share')}`, closure.manifests);
        if (present.length !== closure.manifests.length) return false;
      }
      for (const digest of closure.manifests) {
        await sql.run(
          'INSERT INTO repository_manifests (repo, name, digest, pushed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, digest) DO UPDATE SET pushed_at = excluded.pushed_at',
          [repo, name, digest, now],
        );
      }
      return true;
    });
  }

  async putInfo(digest: string, info: ManifestInfo): Promise<void> {
    await this.db.atomic((sql) => storeInfo(sql, digest, info));
  }

  async info(digests: string[]): Promise<(ManifestInfo & { digest: string })[]> {
    if (digests.length === 0) return [];
    const list = placeholders(digests.length);
    const rows = await this.db.sql.all<InfoRow>(`SELECT digest, config_digest, created, os, architecture, variant, size, info FROM manifest_info WHERE digest IN (${list})`, digests);
    const labels = await this.db.sql.all<{ digest: string; key: string; value: string }>(`SELECT digest, key, value FROM manifest_labels WHERE digest IN (${list}) ORDER BY key`, digests);
    return rows.map((row) => ({
      digest: row.digest,
      configDigest: row.config_digest,
      created: row.created,
      os: row.os,
      architecture: row.architecture,
      variant: row.variant,
      size: Number(row.size),
      labels: Object.fromEntries(labels.filter((label) => label.digest === row.digest).map((label) => [label.key, label.value])),
      details: row.info,
    }));
  }

  async usage({ repo, name }: ImageRef, digest: string): Promise<{ pushed_at: number; pulled_at: number | null; downloads: number } | undefined> {
    const row = await this.db.sql.get<{ pushed_at: number; pulled_at: number | null; downloads: number }>(
      'SELECT pushed_at, pulled_at, downloads FROM repository_manifests WHERE repo = $1 AND name = $2 AND digest = $3',
      [repo, name, digest],
    );
    return row && { pushed_at: Number(row.pushed_at), pulled_at: row.pulled_at === null ? null : Number(row.pulled_at), downloads: Number(row.downloads) };
  }

  async search(query: SearchQuery): Promise<SearchRow[]> {
    if (query.repositories.length === 0) return [];
    const params: unknown[] = [...query.repositories];
    const where = [`t.repo IN (${placeholders(query.repositories.length)})`];
    const param = (value: unknown) => `$${params.push(value)}`;
    const match = (column: string, value: string) => (/[*?]/.test(value) ? wildcard(this.db.sql, column, value, param) : `${column} = ${param(value)}`);
    if (query.image !== undefined) where.push(match('t.name', query.image));
    if (query.tag !== undefined) where.push(match('t.tag', query.tag));
    // A tag matches through its own manifest or, for an index, through one of its platform
    // manifests: the matching manifests and the indexes over them.
    const withParents = (manifests: string) => `${manifests} UNION SELECT f.digest FROM manifest_references f WHERE f.kind = 'manifest' AND f.target IN (${manifests})`;
    let candidates: string | null = null;
    if (query.digest !== undefined) candidates = withParents(`SELECT CAST(${param(query.digest)} AS TEXT)`);
    if (query.label !== undefined) {
      const wanted = query.label.value === undefined ? null : param(storable(query.label.value));
      const value = wanted === null ? '' : ` AND substr(l.value, 1, 200) = substr(CAST(${wanted} AS TEXT), 1, 200) AND l.value = ${wanted}`;
      const labelled = withParents(`SELECT l.digest FROM manifest_labels l WHERE l.key = ${param(storable(query.label.key))}${value}`);
      // key=value is selective: the search starts from the manifests that have it; a bare key may
      // match most images, so tags are walked in order and checked.
      if (candidates === null && query.label.value !== undefined) candidates = labelled;
      else where.push(`t.digest IN (${labelled})`);
    }
    if (query.after) where.push(`(t.repo, t.name, t.tag) > (${param(query.after[0])}, ${param(query.after[1])}, ${param(query.after[2])})`);
    const columns = 't.repo, t.name, t.tag, t.digest, t.pushed_at';
    const order = `ORDER BY t.repo, t.name, t.tag LIMIT ${param(query.limit)}`;
    // CROSS JOIN keeps SQLite's planner from walking every tag in order instead (PostgreSQL plans it either way).
    const text = candidates === null
      ? `SELECT ${columns} FROM tags t WHERE ${where.join(' AND ')} ${order}`
      : `WITH c(digest) AS (${candidates}) SELECT ${columns} FROM c CROSS JOIN tags t WHERE t.digest = c.digest AND ${where.join(' AND ')} ${order}`;
    const rows = await this.db.sql.all<SearchRow>(text, params);
    return rows.map((row) => ({ ...row, pushed_at: Number(row.pushed_at) }));
  }
}
