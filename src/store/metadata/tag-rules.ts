import { placeholders, type Sql } from './sql.js';
import type { ImageRef, TagRules } from './types.js';

// Setting and removing tags in a local repository, the same for a push and a promotion:
//   - a tag set directly is a plain tag (platform_of NULL), even if it was a platform tag;
//   - its platform tags (platformTags) are replaced in the same statement group, so they always
//     follow the index the tag names, and go when the tag goes; a plain tag of the same name is
//     left as it is (it was pushed or promoted on purpose, and moving it would need delete);
//   - maxUniqueTags counts plain tags; beyond it the oldest by push time (then by name) are
//     removed with their platform tags, never the tag just set.

export const noRules: TagRules = { platformTags: [], maxUniqueTags: 0 };

/** Removes tags (and the platform tags that follow them); returns how many plain tags went. */
export async function removeTags(sql: Sql, { repo, name }: ImageRef, tags: string[]): Promise<number> {
  if (tags.length === 0) return 0;
  const list = placeholders(tags.length, 2);
  await sql.run(`DELETE FROM remote_tags WHERE repo = $1 AND name = $2 AND tag IN (${list})`, [repo, name, ...tags]);
  await sql.run(`DELETE FROM tags WHERE repo = $1 AND name = $2 AND platform_of IN (${list})`, [repo, name, ...tags]);
  return sql.run(`DELETE FROM tags WHERE repo = $1 AND name = $2 AND tag IN (${list})`, [repo, name, ...tags]);
}

/**
 * Takes `tag` for `digest` while it is absent or names `digest` or one of `replaces`; false
 * (nothing changed) when it names another manifest. An upsert, not a locking read: a tag pushed
 * meanwhile and not yet committed has no row to lock, but the insert waits for it and then finds
 * it. An existing row is left as it is (and, on PostgreSQL, locked until the transaction ends).
 */
export async function holdTag(sql: Sql, { repo, name }: ImageRef, tag: string, digest: string, now: number, replaces: readonly string[]): Promise<boolean> {
  const held = await sql.run(
    `INSERT INTO tags (repo, name, tag, digest, pushed_at, platform_of) VALUES ($1, $2, $3, $4, $5, NULL)
     ON CONFLICT (repo, name, tag) DO UPDATE SET digest = tags.digest WHERE tags.digest IN ($4${replaces.length > 0 ? `, ${placeholders(replaces.length, 5)}` : ''})`,
    [repo, name, tag, digest, now, ...replaces],
  );
  return held > 0;
}

/** Points `tag` at `digest` with its platform tags, then applies the limit; returns the tags it removed. */
export async function setTag(sql: Sql, image: ImageRef, tag: string, digest: string, now: number, rules: TagRules): Promise<string[]> {
  const { repo, name } = image;
  await sql.run('DELETE FROM tags WHERE repo = $1 AND name = $2 AND platform_of = $3', [repo, name, tag]);
  const upsert = `INSERT INTO tags (repo, name, tag, digest, pushed_at, platform_of) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (repo, name, tag) DO UPDATE SET digest = excluded.digest, pushed_at = excluded.pushed_at, platform_of = excluded.platform_of`;
  await sql.run(upsert, [repo, name, tag, digest, now, null]);
  for (const platform of rules.platformTags) {
    if (platform.tag !== tag) await sql.run(`${upsert} WHERE tags.platform_of IS NOT NULL`, [repo, name, platform.tag, platform.digest, now, tag]);
  }
  if (rules.maxUniqueTags <= 0) return [];
  const counted = await sql.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM tags WHERE repo = $1 AND name = $2 AND platform_of IS NULL', [repo, name]);
  const over = Number(counted?.count ?? 0) - rules.maxUniqueTags;
  if (over <= 0) return [];
  const excess = await sql.all<{ tag: string }>(
    'SELECT tag FROM tags WHERE repo = $1 AND name = $2 AND platform_of IS NULL AND tag <> $3 ORDER BY pushed_at, tag LIMIT $4',
    [repo, name, tag, over],
  );
  const dropped = excess.map((row) => row.tag);
  await removeTags(sql, image, dropped);
  await sql.run(
    'INSERT INTO tag_limit_removals (repo, removed) VALUES ($1, $2) ON CONFLICT (repo) DO UPDATE SET removed = tag_limit_removals.removed + excluded.removed',
    [repo, dropped.length],
  );
  return dropped;
}
