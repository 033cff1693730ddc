import { LRUCache } from 'lru-cache';
import { storeInfo } from './management.js';
import { neededBy, refuseWhileTagged } from './needed.js';
import { placeholders, type Db, type Sql } from './sql.js';
import { holdTag, noRules, removeTags, setTag } from './tag-rules.js';
import type { ImageRef, ManifestPut, ManifestRow, Manifests, ReferrerRow, UnlinkOptions } from './types.js';

/** Bytes of manifest content kept in memory. By digest, so an entry can never go stale. */
const contentCacheBytes = 64 << 20;

export function manifestContentCache(): LRUCache<string, ManifestRow> {
  return new LRUCache<string, ManifestRow>({ maxSize: contentCacheBytes, sizeCalculation: (row) => row.size + 200 });
}

/** Rows of `(digest, target, kind)` references as one multi-row INSERT's values. */
function references(put: ManifestPut): unknown[][] {
  const { manifest } = put;
  return [
    ...manifest.blobs.map((target) => [manifest.digest, target, 'blob']),
    ...manifest.children.map((child) => [manifest.digest, child.digest, 'manifest']),
    ...manifest.foreign.map((layer) => [manifest.digest, layer.digest, 'foreign']),
  ];
}

/** Stores a manifest's bytes and references, links it into the image and moves the tag; returns the tags maxUniqueTags removed. */
async function store(sql: Sql, put: ManifestPut): Promise<string[]> {
  const { repo, name, manifest, content, tag, now } = put;
  await sql.run(
    `INSERT INTO manifests (digest, media_type, size, content, subject, artifact_type, annotations)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO UPDATE SET size = excluded.size`, // locks the row: the collector re-checks after it
    [manifest.digest, manifest.mediaType, content.length, Buffer.from(content.buffer, content.byteOffset, content.length),
      manifest.subject?.digest ?? null, manifest.artifactType, manifest.annotations ? JSON.stringify(manifest.annotations) : null],
  );
  const rows = references(put);
  if (rows.length > 0) {
    const values = rows.map((_, i) => `(${placeholders(3, i * 3)})`).join(', ');
    await sql.run(`INSERT INTO manifest_references (digest, target, kind) VALUES ${values} ON CONFLICT (digest, target) DO NOTHING`, rows.flat());
  }
  await sql.run(
    'INSERT INTO repository_manifests (repo, name, digest, pushed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, digest) DO UPDATE SET pushed_at = excluded.pushed_at',
    [repo, name, manifest.digest, now],
  );
  if (put.info) await storeInfo(sql, manifest.digest, put.info);
  return tag ? setTag(sql, put, tag, manifest.digest, now, put.rules ?? noRules) : [];
}

/**
 * Touches the rows of `table` for these digests in the image (a change the collector's deleting
 * statement waits for and then sees) and returns the digests that are not there.
 */
async function touchPresent(sql: Sql, table: 'repository_blobs' | 'repository_manifests', put: ManifestPut, digests: string[]): Promise<string[]> {
  if (digests.length === 0) return [];
  const column = table === 'repository_blobs' ? 'linked_at' : 'pushed_at';
  const touched = await sql.all<{ digest: string }>(
    `UPDATE ${table} SET ${column} = $1 WHERE repo = $2 AND name = $3 AND digest IN (${placeholders(digests.length, 3)}) RETURNING digest`,
    [put.now, put.repo, put.name, ...digests],
  );
  const present = new Set(touched.map((row) => row.digest));
  return digests.filter((digest) => !present.has(digest));
}

export class SqlManifests implements Manifests {
  constructor(private readonly db: Db, private readonly contents: LRUCache<string, ManifestRow>) {}

  async content(digest: string): Promise<ManifestRow | undefined> {
    const cached = this.contents.get(digest);
    if (cached) return cached;
    const row = await this.db.sql.get<ManifestRow>('SELECT digest, media_type, size, content FROM manifests WHERE digest = $1', [digest]);
    if (!row) return undefined;
    const normalized = { ...row, size: Number(row.size) };
    this.contents.set(digest, normalized);
    return normalized;
  }

  async inImage({ repo, name }: ImageRef, digest: string): Promise<ManifestRow | undefined> {
    const linked = await this.db.reads.get(`manifest\0${repo}\0${name}\0${digest}`, async () => (await this.db.sql.get('SELECT 1 AS one FROM repository_manifests WHERE repo = $1 AND name = $2 AND digest = $3', [repo, name, digest])) !== undefined);
    return linked ? this.content(digest) : undefined;
  }

  async push(put: ManifestPut): Promise<{ missing: string[]; dropped: string[]; taken?: true }> {
    return this.db.atomic(async (sql) => {
      // An index's children may be present and yet incomplete (an untagged one lost a child or a
      // layer to a DELETE): what they need, however deep, must be in the image too, as a DELETE
      // keeps it for a tagged manifest.
      const children = put.manifest.children.map((child) => child.digest);
      const nested = await neededBy(sql, children);
      const missing = [
        ...await touchPresent(sql, 'repository_blobs', put, [...new Set([...put.manifest.blobs, ...nested.blobs])]),
        ...await touchPresent(sql, 'repository_manifests', put, [...new Set([...children, ...nested.manifests])]),
      ];
      if (missing.length > 0) return { missing, dropped: [] };
      if (put.tag && put.overwrite === false && !(await holdTag(sql, put, put.tag, put.manifest.digest, put.now, []))) return { missing, dropped: [], taken: true };
      return { missing, dropped: await store(sql, put) };
    });
  }

  async cache(put: ManifestPut): Promise<void> {
    await this.db.atomic(async (sql) => {
      await store(sql, put);
      if (put.tag) {
        await sql.run(
          'INSERT INTO remote_tags (repo, name, tag, checked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, tag) DO UPDATE SET checked_at = excluded.checked_at',
          [put.repo, put.name, put.tag, put.now],
        );
      }
    });
  }

  async unlink({ repo, name }: ImageRef, digest: string, options: UnlinkOptions = {}): Promise<boolean> {
    return this.db.atomic(async (sql) => {
      if (options.keepWhileTagged) await refuseWhileTagged(sql, 'repository_manifests', { repo, name }, digest);
      const params = [repo, name, digest];
      const tags = await sql.all<{ tag: string }>('SELECT tag FROM tags WHERE repo = $1 AND name = $2 AND digest = $3', params);
      await removeTags(sql, { repo, name }, tags.map((row) => row.tag));
      return (await sql.run('DELETE FROM repository_manifests WHERE repo = $1 AND name = $2 AND digest = $3', params)) > 0;
    });
  }

  async referrers({ repo, name }: ImageRef, subject: string): Promise<ReferrerRow[]> {
    const rows = await this.db.sql.all<ReferrerRow>(
      `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m JOIN repository_manifests r ON r.digest = m.digest
       WHERE m.subject = $1 AND r.repo = $2 AND r.name = $3 ORDER BY m.digest`,
      [subject, repo, name],
    );
    return rows.map((row) => ({ ...row, size: Number(row.size) }));
  }

  async withForeignLayer({ repo, name }: ImageRef, digest: string): Promise<Buffer | undefined> {
    const row = await this.db.sql.get<{ content: Buffer }>(
      `SELECT m.content FROM manifest_references f JOIN repository_manifests r ON r.digest = f.digest JOIN manifests m ON m.digest = f.digest
       WHERE f.target = $1 AND f.kind = 'foreign' AND r.repo = $2 AND r.name = $3 LIMIT 1`,
      [digest, repo, name],
    );
    return row?.content;
  }
}
