import { lockRows, type Db } from './sql.js';
import { holdTag, removeTags, setTag } from './tag-rules.js';
import type { ConfirmedTag, ImageRef, Page, TagDetail, TagRow, TagRules, Tags } from './types.js';

export class SqlTags implements Tags {
  constructor(private readonly db: Db) {}

  async get({ repo, name }: ImageRef, tag: string): Promise<TagRow | undefined> {
    return this.db.reads.get(`tag\0${repo}\0${name}\0${tag}`, async () => {
      const row = await this.db.sql.get<TagRow>('SELECT digest, pushed_at FROM tags WHERE repo = $1 AND name = $2 AND tag = $3', [repo, name, tag]);
      return row && { digest: row.digest, pushed_at: Number(row.pushed_at) };
    });
  }

  async list({ repo, name }: ImageRef, page: Page): Promise<string[]> {
    const rows = await this.db.sql.all<{ tag: string }>(
      'SELECT tag FROM tags WHERE repo = $1 AND name = $2 AND tag > $3 ORDER BY tag LIMIT $4',
      [repo, name, page.last ?? '', page.n],
    );
    return rows.map((row) => row.tag);
  }

  async details({ repo, name }: ImageRef): Promise<TagDetail[]> {
    const rows = await this.db.sql.all<TagDetail>(
      'SELECT tag, digest, pushed_at, platform_of FROM tags WHERE repo = $1 AND name = $2 ORDER BY pushed_at, tag',
      [repo, name],
    );
    return rows.map((row) => ({ ...row, pushed_at: Number(row.pushed_at) }));
  }

  async remove(image: ImageRef, tag: string, digest?: string): Promise<boolean> {
    return this.db.atomic(async (sql) => {
      if (digest !== undefined) {
        // Locked (PostgreSQL): a push moving the tag meanwhile is waited for, and then seen here.
        const row = await sql.get<{ digest: string }>(`SELECT digest FROM tags WHERE repo = $1 AND name = $2 AND tag = $3${lockRows(sql, 'update')}`, [image.repo, image.name, tag]);
        if (row?.digest !== digest) return false;
      }
      return (await removeTags(sql, image, [tag])) > 0;
    });
  }

  async set(image: ImageRef, tag: string, digest: string, now: number, rules: TagRules): Promise<string[]> {
    return this.db.atomic((sql) => setTag(sql, image, tag, digest, now, rules));
  }

  async hold(image: ImageRef, tag: string, digest: string, now: number, replaces: readonly string[]): Promise<boolean> {
    return holdTag(this.db.sql, image, tag, digest, now, replaces);
  }

  async removedByLimit(): Promise<Record<string, number>> {
    const rows = await this.db.sql.all<{ repo: string; removed: number | string }>('SELECT repo, removed FROM tag_limit_removals');
    return Object.fromEntries(rows.map((row) => [row.repo, Number(row.removed)]));
  }

  async getConfirmed({ repo, name }: ImageRef, tag: string): Promise<ConfirmedTag | undefined> {
    return this.db.reads.get(`confirmed\0${repo}\0${name}\0${tag}`, async () => {
      const row = await this.db.sql.get<{ digest: string; pushed_at: number; checked_at: number | null }>(
        `SELECT t.digest, t.pushed_at, r.checked_at FROM tags t
         LEFT JOIN remote_tags r ON r.repo = t.repo AND r.name = t.name AND r.tag = t.tag
         WHERE t.repo = $1 AND t.name = $2 AND t.tag = $3`,
        [repo, name, tag],
      );
      return row && { digest: row.digest, pushed_at: Number(row.pushed_at), confirmed_at: row.checked_at === null ? null : Number(row.checked_at) };
    });
  }

  async confirm({ repo, name }: ImageRef, tag: string, at: number): Promise<void> {
    await this.db.sql.run(
      'INSERT INTO remote_tags (repo, name, tag, checked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, tag) DO UPDATE SET checked_at = excluded.checked_at',
      [repo, name, tag, at],
    );
  }
}
