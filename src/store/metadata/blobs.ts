import { lockRows, type Db, type Sql } from './sql.js';
import type { BlobRow, Blobs, ImageRef } from './types.js';

// The stored-bytes registry. Every change that takes a reference to a blob changes its row
// under a row lock (touched_at): the collector's conditional UPDATE, waiting on that lock,
// then sees the new version and leaves the blob alone (PostgreSQL re-checks a locked row's own
// columns after the lock is released; SQLite has one writer at a time).

export class SqlBlobs implements Blobs {
  constructor(private readonly db: Db) {}

  async get(digest: string): Promise<BlobRow | undefined> {
    const row = await this.db.sql.get<BlobRow>('SELECT digest, size, state, touched_at FROM blobs WHERE digest = $1', [digest]);
    return row && { ...row, size: Number(row.size), touched_at: Number(row.touched_at) };
  }

  async claim(digest: string, size: number, now: number): Promise<'claimed' | 'deleting'> {
    return this.db.atomic(async (sql) => {
      const inserted = await sql.run("INSERT INTO blobs (digest, size, state, touched_at) VALUES ($1, $2, 'present', $3) ON CONFLICT (digest) DO NOTHING", [digest, size, now]);
      if (inserted > 0) return 'claimed';
      const row = await sql.get<{ state: string }>(`SELECT state FROM blobs WHERE digest = $1${lockRows(sql, 'update')}`, [digest]);
      if (row?.state !== 'present' && (await collectorActive(sql, now))) return 'deleting';
      // Present, or marked by a collection that failed or was killed: taken back (the caller
      // places the bytes again, whether or not they are still there).
      await sql.run("UPDATE blobs SET state = 'present', touched_at = $2 WHERE digest = $1", [digest, now]);
      return 'claimed';
    });
  }

  async link(image: ImageRef, digest: string, size: number, now: number): Promise<boolean> {
    return this.db.atomic((sql) => linkBlob(sql, image, digest, size, now));
  }
}

/**
 * Whether a collector holds the lease. PostgreSQL: the lease table is locked against writers until
 * this transaction ends, so no collector takes the lease (and goes on to delete what this one
 * takes back) in between.
 */
async function collectorActive(sql: Sql, now: number): Promise<boolean> {
  if (sql.dialect === 'postgres') await sql.run('LOCK TABLE collector_lease IN EXCLUSIVE MODE');
  return (await sql.get('SELECT 1 FROM collector_lease WHERE id = 1 AND expires_at >= $1', [now])) !== undefined;
}

/** Links a present blob into an image, touching its row (the collector then leaves it alone); false when it is not present. */
export async function linkBlob(sql: Sql, { repo, name }: ImageRef, digest: string, size: number, now: number): Promise<boolean> {
  const touched = await sql.run("UPDATE blobs SET touched_at = $2 WHERE digest = $1 AND state = 'present'", [digest, now]);
  if (touched === 0) return false;
  await sql.run(
    'INSERT INTO repository_blobs (repo, name, digest, size, linked_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo, name, digest) DO UPDATE SET linked_at = excluded.linked_at',
    [repo, name, digest, size, now],
  );
  return true;
}
