import type { Db } from './sql.js';
import type { ImageRef, Images, Page } from './types.js';

/** Repositories and their images: an image exists while it holds a manifest. */
export class SqlImages implements Images {
  constructor(private readonly db: Db) {}

  async register(key: string, kind: string): Promise<void> {
    await this.db.sql.run(
      'INSERT INTO repositories (key, kind, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind',
      [key, kind, Date.now()],
    );
  }

  async exists({ repo, name }: ImageRef): Promise<boolean> {
    return (await this.db.sql.get('SELECT 1 AS one FROM repository_manifests WHERE repo = $1 AND name = $2 LIMIT 1', [repo, name])) !== undefined;
  }

  async list(repo: string, page: Page): Promise<string[]> {
    const rows = await this.db.sql.all<{ name: string }>(
      'SELECT DISTINCT name FROM repository_manifests WHERE repo = $1 AND name > $2 ORDER BY name LIMIT $3',
      [repo, page.last ?? '', page.n],
    );
    return rows.map((row) => row.name);
  }

  async remove({ repo, name }: ImageRef): Promise<boolean> {
    return this.db.atomic(async (sql) => {
      const params = [repo, name];
      await sql.run('DELETE FROM remote_tags WHERE repo = $1 AND name = $2', params);
      await sql.run('DELETE FROM tags WHERE repo = $1 AND name = $2', params);
      const manifests = await sql.run('DELETE FROM repository_manifests WHERE repo = $1 AND name = $2', params);
      const blobs = await sql.run('DELETE FROM repository_blobs WHERE repo = $1 AND name = $2', params);
      return manifests + blobs > 0;
    });
  }
}
