import { lockRows, placeholders, type Db, type Sql } from './sql.js';
import type { Batch, BlobRow, CollectorQueries, Swept } from './types.js';

// The collector's statements. Each batch is one short transaction over a window of at most
// `size` rows in key order: it finds the candidates in the window, locks them (PostgreSQL: FOR
// UPDATE, waiting for any transaction that is taking a reference to them), then deletes them
// with the same conditions in a new statement, which sees everything committed meanwhile. So
// nothing that gained a reference is ever removed, and no batch reads more than its window.

// Nested EXISTS rather than joins: the few references of a digest are found first (by target),
// then each is looked up by primary key; a join let SQLite walk every manifest of the image.

/** Untagged, not a child of a manifest of the image, subject (if any) not in the image, old. */
const untaggedManifest = `r.repo = $1 AND r.pushed_at < $2
  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = r.repo AND t.name = r.name AND t.digest = r.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_references f WHERE f.target = r.digest AND f.kind = 'manifest'
                  AND EXISTS (SELECT 1 FROM repository_manifests p WHERE p.repo = r.repo AND p.name = r.name AND p.digest = f.digest))
  AND NOT EXISTS (SELECT 1 FROM manifests m JOIN repository_manifests s ON s.digest = m.subject
                  WHERE m.digest = r.digest AND s.repo = r.repo AND s.name = r.name)`;

/**
 * A blob link no manifest of its image references, linked and pulled (a HEAD too: the client then
 * skips the upload and names the blob in a manifest) before the grace period.
 */
const unreferencedLink = `b.repo = $1 AND b.linked_at < $2 AND (b.pulled_at IS NULL OR b.pulled_at < $2)
  AND NOT EXISTS (SELECT 1 FROM manifest_references f WHERE f.target = b.digest
                  AND EXISTS (SELECT 1 FROM repository_manifests r WHERE r.repo = b.repo AND r.name = b.name AND r.digest = f.digest))`;

const orphanManifest = 'NOT EXISTS (SELECT 1 FROM repository_manifests r WHERE r.digest = m.digest)';

const unusedBlob = `b.state = 'present' AND b.touched_at < $1
  AND NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_references f WHERE f.target = b.digest)`;

interface Scanned {
  doomed: number;
}

/**
 * The next `size` rows of `from` after `after` in `order` (a keyset window, so a run reads every
 * row once whatever it keeps), each with whether it meets `condition`. Reads only: no lock.
 */
async function scan<T>(sql: Sql, window: { from: string; keys: string[]; condition: string; filter: string; params: unknown[] }, batch: Batch): Promise<{ rows: (T & Scanned)[]; next: string[] | null }> {
  const { from, keys, condition, filter, params } = window;
  const after = batch.after ? ` AND (${keys.join(', ')}) > (${placeholders(keys.length, params.length + 1)})` : '';
  const rows = await sql.all<T & Scanned>(
    `SELECT ${keys.join(', ')}, CASE WHEN ${condition} THEN 1 ELSE 0 END AS doomed FROM ${from}
     WHERE ${filter}${after} ORDER BY ${keys.join(', ')} LIMIT $${params.length + 1}`,
    [...params, batch.size, ...(batch.after ?? [])],
  );
  const last = rows.at(-1) as Record<string, unknown> | undefined;
  const next = rows.length === batch.size && last ? keys.map((key) => String(last[key.split('.')[1]!])) : null;
  return { rows: rows.filter((row) => Number(row.doomed) === 1), next };
}

export class SqlCollector implements CollectorQueries {
  constructor(private readonly db: Db) {}

  async lease(owner: string, now: number, expiresAt: number, replacing?: string): Promise<string | null> {
    return this.db.atomic(async (sql) => {
      await sql.run(
        `INSERT INTO collector_lease (id, owner, expires_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE collector_lease.owner = $1 OR collector_lease.owner = $4 OR collector_lease.expires_at < $3`,
        [owner, expiresAt, now, replacing ?? owner],
      );
      const holder = await sql.get<{ owner: string }>('SELECT owner FROM collector_lease WHERE id = 1');
      return holder?.owner === owner ? null : holder?.owner ?? null;
    });
  }

  async release(owner: string): Promise<void> {
    await this.db.sql.run('DELETE FROM collector_lease WHERE id = 1 AND owner = $1', [owner]);
  }

  async sweepUntaggedManifests(repo: string, before: number, batch: Batch): Promise<Swept> {
    return this.#sweepImageRows({ table: 'repository_manifests', alias: 'r', condition: untaggedManifest }, repo, before, batch);
  }

  async sweepUnreferencedLinks(repo: string, before: number, batch: Batch): Promise<Swept> {
    return this.#sweepImageRows({ table: 'repository_blobs', alias: 'b', condition: unreferencedLink }, repo, before, batch);
  }

  /** Deletes the (name, digest) rows of `repo` in the window that meet `condition`, re-checked after locking them. */
  async #sweepImageRows(rows: { table: string; alias: string; condition: string }, repo: string, before: number, batch: Batch): Promise<Swept> {
    const { table, alias, condition } = rows;
    return this.db.atomic(async (sql) => {
      const { rows: found, next } = await scan<{ name: string; digest: string }>(sql, {
        from: `${table} ${alias}`, keys: [`${alias}.name`, `${alias}.digest`], condition, filter: `${alias}.repo = $1`, params: [repo, before],
      }, batch);
      let removed = 0;
      for (const { name, digest } of found) {
        if (sql.dialect === 'postgres') await sql.run(`SELECT 1 FROM ${table} WHERE repo = $1 AND name = $2 AND digest = $3${lockRows(sql, 'update')}`, [repo, name, digest]);
        removed += await sql.run(`DELETE FROM ${table} WHERE repo = $1 AND name = $3 AND digest = $4 AND EXISTS (
          SELECT 1 FROM ${table} ${alias} WHERE ${alias}.repo = $1 AND ${alias}.name = $3 AND ${alias}.digest = $4 AND ${condition})`, [repo, before, name, digest]);
      }
      return { removed, next };
    });
  }

  /** Locks these rows of `table` by digest (PostgreSQL; SQLite has one writer at a time). */
  async #lock(sql: Sql, table: string, digests: string[]): Promise<void> {
    if (sql.dialect === 'postgres') await sql.run(`SELECT 1 FROM ${table} WHERE digest IN (${placeholders(digests.length)})${lockRows(sql, 'update')}`, digests);
  }

  async sweepOrphanManifests(batch: Batch): Promise<Swept> {
    return this.db.atomic(async (sql) => {
      const { rows, next } = await scan<{ digest: string }>(sql, { from: 'manifests m', keys: ['m.digest'], condition: orphanManifest, filter: '1 = 1', params: [] }, batch);
      if (rows.length === 0) return { removed: 0, next };
      const digests = rows.map((row) => row.digest);
      await this.#lock(sql, 'manifests', digests);
      const removed = await sql.all<{ digest: string }>(
        `DELETE FROM manifests WHERE digest IN (${placeholders(digests.length)}) AND NOT EXISTS (SELECT 1 FROM repository_manifests r WHERE r.digest = manifests.digest) RETURNING digest`,
        digests,
      );
      if (removed.length > 0) {
        for (const table of ['manifest_references', 'manifest_info', 'manifest_labels']) {
          await sql.run(`DELETE FROM ${table} WHERE digest IN (${placeholders(removed.length)})`, removed.map((row) => row.digest));
        }
      }
      return { removed: removed.length, next };
    });
  }

  async markUnusedBlobs(before: number, batch: Batch): Promise<{ marked: BlobRow[]; next: string[] | null }> {
    return this.db.atomic(async (sql) => {
      const { rows, next } = await scan<{ digest: string }>(sql, { from: 'blobs b', keys: ['b.digest'], condition: unusedBlob, filter: '1 = 1', params: [before] }, batch);
      if (rows.length === 0) return { marked: [], next };
      const digests = rows.map((row) => row.digest);
      await this.#lock(sql, 'blobs', digests);
      const marked = await sql.all<BlobRow>(
        `UPDATE blobs SET state = 'deleting' WHERE digest IN (${placeholders(rows.length, 1)}) AND EXISTS (
           SELECT 1 FROM blobs b WHERE b.digest = blobs.digest AND ${unusedBlob}) RETURNING digest, size, state, touched_at`,
        [before, ...digests],
      );
      return { marked: marked.map((row) => ({ ...row, size: Number(row.size), touched_at: Number(row.touched_at) })), next };
    });
  }

  async deleting(limit: number): Promise<BlobRow[]> {
    const rows = await this.db.sql.all<BlobRow>("SELECT digest, size, state, touched_at FROM blobs WHERE state = 'deleting' ORDER BY digest LIMIT $1", [limit]);
    return rows.map((row) => ({ ...row, size: Number(row.size), touched_at: Number(row.touched_at) }));
  }

  async unregistered(digests: string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    const known = await this.db.sql.all<{ digest: string }>(`SELECT digest FROM blobs WHERE digest IN (${placeholders(digests.length)})`, digests);
    const registered = new Set(known.map((row) => row.digest));
    return digests.filter((digest) => !registered.has(digest));
  }

  async claimUnregistered(digest: string, size: number, now: number): Promise<boolean> {
    return (await this.db.sql.run("INSERT INTO blobs (digest, size, state, touched_at) VALUES ($1, $2, 'deleting', $3) ON CONFLICT (digest) DO NOTHING", [digest, size, now])) > 0;
  }

  async stillDeleting(digests: string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    const rows = await this.db.sql.all<{ digest: string }>(`SELECT digest FROM blobs WHERE state = 'deleting' AND digest IN (${placeholders(digests.length)})`, digests);
    return rows.map((row) => row.digest);
  }

  async forget(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.db.sql.run(`DELETE FROM blobs WHERE state = 'deleting' AND digest IN (${placeholders(digests.length)})`, digests);
  }
}
