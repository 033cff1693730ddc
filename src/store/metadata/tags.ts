import type { Db } from './sql.js';
import type { ImageRef, Page, TagRow, Tags } from './types.js';

export class SqlTags implements Tags {
  constructor(private readonly db: Db) {}

  async get({ repo, name }: ImageRef, tag: string): Promise<TagRow | undefined> {
    const row = await this.db.sql.get<TagRow>('SELECT digest, pushed_at FROM tags WHERE repo = $1 AND name = $2 AND tag = $3', [repo, name, tag]);
    return row && { digest: row.digest, pushed_at: Number(row.pushed_at) };
  }

  async list({ repo, name }: ImageRef, page: Page): Promise<string[]> {
    const rows = await this.db.sql.all<{ tag: string }>(
      'SELECT tag FROM tags WHERE repo = $1 AND name = $2 AND tag > $3 ORDER BY tag LIMIT $4',
      [repo, name, page.last ?? '', page.n],
    );
    return rows.map((row) => row.tag);
  }

  async remove({ repo, name }: ImageRef, tag: string): Promise<boolean> {
    return this.db.atomic(async (sql) => {
      await sql.run('DELETE FROM remote_tags WHERE repo = $1 AND name = $2 AND tag = $3', [repo, name, tag]);
      return (await sql.run('DELETE FROM tags WHERE repo = $1 AND name = $2 AND tag = $3', [repo, name, tag])) > 0;
    });
  }

  async confirmedAt({ repo, name }: ImageRef, tag: string): Promise<number | null> {
    const row = await this.db.sql.get<{ checked_at: number }>('SELECT checked_at FROM remote_tags WHERE repo = $1 AND name = $2 AND tag = $3', [repo, name, tag]);
    return row ? Number(row.checked_at) : null;
  }

  async confirm({ repo, name }: ImageRef, tag: string, at: number): Promise<void> {
    await this.db.sql.run(
      'INSERT INTO remote_tags (repo, name, tag, checked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, tag) DO UPDATE SET checked_at = excluded.checked_at',
      [repo, name, tag, at],
    );
  }
}
