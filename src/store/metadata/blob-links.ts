import { refuseWhileTagged } from './needed.js';
import type { Db, Sql } from './sql.js';
import type { BlobLinkRow, BlobLinks, ImageRef, UnlinkOptions } from './types.js';

export class SqlBlobLinks implements BlobLinks {
  constructor(private readonly db: Db) {}

  async size({ repo, name }: ImageRef, digest: string): Promise<number | null> {
    return this.db.reads.get(`blob\0${repo}\0${name}\0${digest}`, async () => {
      const row = await this.db.sql.get<{ size: number }>('SELECT size FROM repository_blobs WHERE repo = $1 AND name = $2 AND digest = $3', [repo, name, digest]);
      return row ? Number(row.size) : null;
    });
  }

  async sizeInRepository(repo: string, digest: string): Promise<number | null> {
    const row = await this.db.sql.get<{ size: number }>('SELECT size FROM repository_blobs WHERE repo = $1 AND digest = $2 LIMIT 1', [repo, digest]);
    return row ? Number(row.size) : null;
  }

  async unlink(image: ImageRef, digest: string, options: UnlinkOptions = {}): Promise<boolean> {
    const remove = async (sql: Sql) => (await sql.run('DELETE FROM repository_blobs WHERE repo = $1 AND name = $2 AND digest = $3', [image.repo, image.name, digest])) > 0;
    if (!options.keepWhileTagged) return remove(this.db.sql);
    return this.db.atomic(async (sql) => {
      await refuseWhileTagged(sql, 'repository_blobs', image, digest);
      return remove(sql);
    });
  }

  async repositoryBytes(repo: string): Promise<number> {
    const row = await this.db.sql.get<{ bytes: number | string | null }>('SELECT SUM(size) AS bytes FROM repository_blobs WHERE repo = $1', [repo]);
    return Number(row?.bytes ?? 0);
  }

  async leastRecentlyPulled(repo: string, limit: number): Promise<BlobLinkRow[]> {
    const rows = await this.db.sql.all<BlobLinkRow>(
      'SELECT name, digest, size FROM repository_blobs WHERE repo = $1 ORDER BY COALESCE(pulled_at, linked_at) LIMIT $2',
      [repo, limit],
    );
    return rows.map((row) => ({ ...row, size: Number(row.size) }));
  }

  async referencedBy({ repo, name }: ImageRef, digest: string): Promise<{ digest: string; tag: string | null }[]> {
    return this.db.sql.all<{ digest: string; tag: string | null }>(
      `SELECT r.digest, (SELECT MIN(t.tag) FROM tags t WHERE t.repo = r.repo AND t.name = r.name AND t.digest = r.digest) AS tag
       FROM manifest_references f JOIN repository_manifests r ON r.digest = f.digest
       WHERE f.target = $1 AND r.repo = $2 AND r.name = $3 ORDER BY tag, r.digest`,
      [digest, repo, name],
    );
  }
}
