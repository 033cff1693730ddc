import type { Dialect, Sql, SqlDatabase } from './sql.js';

// Versioned migrations, the same for SQLite and PostgreSQL (column types differ). Applied in
// order at start-up, each in its own transaction with its row in schema_migrations; a database
// from an older Wharf (migration 1 is the schema it already had) is brought forward in place.
//
// Manifests are content-addressed and shared (like blobs); what a repository holds is links:
// repository_manifests, repository_blobs and tags. `repo` is the repository key (docker-local),
// `name` the image inside it (team/app). Times are milliseconds since the epoch.

interface Types {
  int: string;
  bytes: string;
  /** SQLite stores tables keyed by their primary key without a rowid: smaller and faster. */
  keyed: string;
}

const types: Record<Dialect, Types> = {
  sqlite: { int: 'INTEGER', bytes: 'BLOB', keyed: ' WITHOUT ROWID' },
  postgres: { int: 'BIGINT', bytes: 'BYTEA', keyed: '' },
};

const migrations: ((t: Types) => string[])[] = [
  // 1: the schema before the storage seams.
  ({ int, bytes, keyed }) => [
    `CREATE TABLE IF NOT EXISTS repositories (key TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at ${int} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS manifests (
      digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, size ${int} NOT NULL, content ${bytes} NOT NULL,
      subject TEXT, artifact_type TEXT, annotations TEXT)`,
    'CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(subject) WHERE subject IS NOT NULL',
    `CREATE TABLE IF NOT EXISTS manifest_references (
      digest TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest', 'foreign')),
      PRIMARY KEY (digest, target))${keyed}`,
    'CREATE INDEX IF NOT EXISTS manifest_references_target ON manifest_references(target)',
    `CREATE TABLE IF NOT EXISTS repository_manifests (
      repo TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL, pushed_at ${int} NOT NULL, pulled_at ${int},
      PRIMARY KEY (repo, name, digest))${keyed}`,
    `CREATE TABLE IF NOT EXISTS tags (
      repo TEXT NOT NULL, name TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, pushed_at ${int} NOT NULL, checked_at ${int},
      PRIMARY KEY (repo, name, tag))${keyed}`,
    `CREATE TABLE IF NOT EXISTS repository_blobs (
      repo TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL, size ${int} NOT NULL, linked_at ${int} NOT NULL, pulled_at ${int},
      PRIMARY KEY (repo, name, digest))${keyed}`,
    'CREATE INDEX IF NOT EXISTS repository_blobs_digest ON repository_blobs(digest)',
    `CREATE TABLE IF NOT EXISTS uploads (uuid TEXT PRIMARY KEY, repo TEXT NOT NULL, name TEXT NOT NULL, started_at ${int} NOT NULL)`,
  ],
  // 2: one owner of a blob's life (the blobs registry), the remote cache's own state, uploads
  // that remember which blob they are being committed to (start-up repair), GC indexes.
  ({ int, keyed }) => [
    `CREATE TABLE blobs (
      digest TEXT PRIMARY KEY, size ${int} NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('present', 'deleting')),
      touched_at ${int} NOT NULL)${keyed}`,
    "INSERT INTO blobs (digest, size, state, touched_at) SELECT digest, MAX(size), 'present', 0 FROM repository_blobs GROUP BY digest",
    `CREATE TABLE remote_tags (
      repo TEXT NOT NULL, name TEXT NOT NULL, tag TEXT NOT NULL, checked_at ${int} NOT NULL,
      PRIMARY KEY (repo, name, tag))${keyed}`,
    'INSERT INTO remote_tags (repo, name, tag, checked_at) SELECT repo, name, tag, checked_at FROM tags WHERE checked_at IS NOT NULL',
    'ALTER TABLE tags DROP COLUMN checked_at',
    'CREATE INDEX tags_digest ON tags(repo, name, digest)',
    'CREATE INDEX repository_manifests_digest ON repository_manifests(digest)',
    'ALTER TABLE uploads ADD COLUMN committing TEXT',
    `CREATE TABLE collector_lease (id ${int} PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at ${int} NOT NULL)`,
  ],
  // 3: users and access tokens (access control), with the change counter servers poll. SQLite
  // data directories from before this migration may hold these tables already (access control
  // kept them in the same file): kept as they are.
  ({ int }) => [
    `CREATE TABLE IF NOT EXISTS auth_users (
      name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, groups TEXT NOT NULL, admin ${int} NOT NULL,
      created_at ${int} NOT NULL, updated_at ${int} NOT NULL, password_changed_at ${int} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS auth_tokens (
      id TEXT PRIMARY KEY, owner TEXT NOT NULL, secret_hash TEXT NOT NULL, scope TEXT NOT NULL, expires_at ${int},
      description TEXT NOT NULL, created_at ${int} NOT NULL, last_used_at ${int}, revoked_at ${int})`,
    `CREATE TABLE IF NOT EXISTS auth_changes (id ${int} PRIMARY KEY CHECK (id = 1), counter ${int} NOT NULL)`,
    'INSERT INTO auth_changes (id, counter) VALUES (1, 0) ON CONFLICT (id) DO NOTHING',
  ],
  // 4: repository management. Platform tags (platformTags) name the index tag they follow;
  // download counts beside pull times; what the image config says, extracted once per manifest
  // (manifest_info: platform, created, total size, the Docker Info fields as JSON; labels in a
  // table of their own for search), and indexes for searching tags by name, tag and digest.
  ({ int }) => [
    'ALTER TABLE tags ADD COLUMN platform_of TEXT',
    'CREATE INDEX tags_platform_of ON tags(repo, name, platform_of) WHERE platform_of IS NOT NULL',
    'CREATE INDEX tags_by_digest ON tags(digest)',
    'CREATE INDEX tags_by_name ON tags(name, tag)',
    'CREATE INDEX tags_by_tag ON tags(tag)',
    `ALTER TABLE repository_manifests ADD COLUMN downloads ${int} NOT NULL DEFAULT 0`,
    `CREATE TABLE manifest_info (
      digest TEXT PRIMARY KEY, config_digest TEXT, created TEXT, os TEXT, architecture TEXT, variant TEXT,
      size ${int} NOT NULL, info TEXT NOT NULL)`,
    'CREATE TABLE manifest_labels (digest TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (digest, key))',
    'CREATE INDEX manifest_labels_key ON manifest_labels(key, value)',
  ],
  // 5: the last removal of each user name, kept after the name is taken again: tokens carry when
  // their user was added, and one added at or before the removal was issued to the removed user.
  ({ int }) => [
    `CREATE TABLE auth_removals (name TEXT PRIMARY KEY, removed_at ${int} NOT NULL)`,
  ],
  // 6: label values of any length: PostgreSQL's btree refuses entries over about 2.7 KB, so the
  // key=value search index holds a value's first 200 characters (the search compares it whole).
  () => [
    'DROP INDEX manifest_labels_key',
    'CREATE INDEX manifest_labels_key ON manifest_labels(key, substr(value, 1, 200))',
  ],
  // 7: upload session locks shared by every node on one PostgreSQL: held by a random holder
  // until a time it moves on while it works, so a dead node's lock lapses.
  ({ int }) => [
    `CREATE TABLE upload_locks (uuid TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at ${int} NOT NULL)`,
  ],
  // 8: tags maxUniqueTags removed, per repository, by whoever removed them (a push on any node or
  // worker, `wharf promote`): what wharf_tags_removed_total reports.
  ({ int }) => [
    `CREATE TABLE tag_limit_removals (repo TEXT PRIMARY KEY, removed ${int} NOT NULL)`,
  ],
  // 9: login attempts (auth.throttle) counted for every node on one PostgreSQL: one row per
  // attempt while it may be in the window, with its user name while it counts for that user.
  ({ int }) => [
    `CREATE TABLE login_attempts (id TEXT PRIMARY KEY, address TEXT NOT NULL, username TEXT, at ${int} NOT NULL)`,
    'CREATE INDEX login_attempts_address ON login_attempts(address, at)',
    'CREATE INDEX login_attempts_at ON login_attempts(at)',
  ],
];

/** Applies the migrations this database has not had yet. */
export async function migrate(database: SqlDatabase): Promise<void> {
  const t = types[database.sql.dialect];
  // Several processes may start at once: one at a time applies, the others find it done. The lock
  // covers creating schema_migrations too: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
  // against a concurrent one (a duplicate key in pg_type).
  const alone = async (sql: Sql) => {
    if (sql.dialect === 'postgres') await sql.run('SELECT pg_advisory_xact_lock(7297810)');
  };
  const apply = async (transaction: SqlDatabase['transaction']) => {
    await transaction(async (sql: Sql) => {
      await alone(sql);
      await sql.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version ${t.int} PRIMARY KEY, applied_at ${t.int} NOT NULL)`);
    });
    for (const [index, migration] of migrations.entries()) {
      const version = index + 1;
      await transaction(async (sql: Sql) => {
        await alone(sql);
        if (await sql.get('SELECT version FROM schema_migrations WHERE version = $1', [version])) return;
        for (const statement of migration(t)) await sql.run(statement);
        await sql.run('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
      });
    }
  };
  await (database.migrations ? database.migrations(apply) : apply(database.transaction));
}
