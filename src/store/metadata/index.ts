import { SqlAccounts } from './accounts.js';
import { SqlBlobLinks } from './blob-links.js';
import { SqlBlobs } from './blobs.js';
import { SqlCollector } from './collector.js';
import { SqlImages } from './images.js';
import { SqlLoginAttempts } from './login-attempts.js';
import { SqlManagement } from './management.js';
import { manifestContentCache, SqlManifests } from './manifests.js';
import { FreshReads, uncachedReads } from './fresh-reads.js';
import { BatchedPulls } from './pulls.js';
import type { PostgresOptions } from './postgres.js';
import { migrate } from './schema.js';
import type { Db, Sql, SqlDatabase } from './sql.js';
import { openSqlite } from './sqlite.js';
import { SqlTags } from './tags.js';
import type { Concerns, Metadata } from './types.js';
import { SqlUploads } from './uploads.js';

export type * from './types.js';

export type MetadataOptions = (
  | { driver: 'sqlite'; path: string; busyTimeoutMs?: number; log?: (message: string) => void }
  | ({ driver: 'postgres'; url: string } & PostgresOptions)
) & { /** The clock of pull times. */ now?: () => number };

function concerns(db: Db, contents: ReturnType<typeof manifestContentCache>): Concerns {
  return {
    images: new SqlImages(db),
    manifests: new SqlManifests(db, contents),
    tags: new SqlTags(db),
    blobLinks: new SqlBlobLinks(db),
    blobs: new SqlBlobs(db),
    uploads: new SqlUploads(db),
    collector: new SqlCollector(db),
    management: new SqlManagement(db),
    accounts: new SqlAccounts(db),
    loginAttempts: new SqlLoginAttempts(db),
  };
}

/**
 * Opens the metadata database (creating or migrating its schema). Every concern reads and writes
 * through the same SQL, on SQLite (embedded, the default) or PostgreSQL (shared by several
 * processes or nodes).
 */
export async function openMetadata(options: MetadataOptions): Promise<Metadata> {
  // pg is loaded only for PostgreSQL: a SQLite server does not pay its memory.
  const database: SqlDatabase = options.driver === 'sqlite'
    ? openSqlite(options.path, options)
    : await (await import('./postgres.js')).openPostgres(options.url, options);
  try {
    await migrate(database);
  } catch (error) {
    await database.close();
    throw error;
  }
  const contents = manifestContentCache();
  const reads = database.changed ? new FreshReads(database.changed) : uncachedReads;
  const outside: Db = { sql: database.sql, reads, atomic: (work) => database.transaction(work) };
  const inside = (sql: Sql): Db => ({ sql, reads: uncachedReads, atomic: (inner) => inner(sql) });
  const pulls = new BatchedPulls(database, options.now);
  return {
    ...concerns(outside, contents),
    pulls,
    transaction: (work) => database.transaction((sql: Sql) => work(concerns(inside(sql), contents))),
    rehearse: (work) => database.rehearse((sql: Sql) => work(concerns(inside(sql), contents))),
    ping: () => database.ping(),
    async close() {
      await pulls.flush().catch(() => undefined);
      await database.close();
    },
  };
}
