import type { Reads } from './fresh-reads.js';

// The one SQL surface both databases stand behind. Statements are written once, with $1, $2…
// placeholders and SQL that SQLite (3.35+) and PostgreSQL (15) both accept; the few differences
// (row locks, column types) are asked of `dialect`. A statement that changes rows and returns
// some uses `all`/`get` too: each driver routes it to its write connection.

export type Dialect = 'sqlite' | 'postgres';

export interface Sql {
  readonly dialect: Dialect;
  all<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(text: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; resolves with the number of rows it changed. */
  run(text: string, params?: readonly unknown[]): Promise<number>;
}

/** A database connection: autocommit statements, and transactions. */
export interface SqlDatabase {
  readonly sql: Sql;
  /**
   * Runs `work` in one transaction (serialized with every other write); rolls back if it throws.
   * PostgreSQL may end it to break a deadlock: it is then run again, so `work` touches nothing but
   * the database (the storage hooks tests force interleavings with may run twice).
   */
  transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
  /**
   * Runs `work` as a transaction that is always rolled back: what it finds is real, what it
   * changes is dropped. Writers wait for it no longer than for a short transaction (SQLite: it
   * runs on a copy; PostgreSQL: it locks only the rows it changes).
   */
  rehearse<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
  /**
   * Runs `work` with transactions for schema migrations: as transaction()'s, with no limit on how
   * long the server may take to answer (PostgreSQL: storage.metadata.timeouts.response), as a
   * migration may build an index over a big table, or wait while another node applies it; on a
   * connection of their own, closed when `work` ends. Absent where transactions have no such
   * limit (SQLite).
   */
  readonly migrations?: <T>(work: (transaction: SqlDatabase['transaction']) => Promise<T>) => Promise<T>;
  /**
   * Whether any process may have committed since the last call (true on the first); where the
   * database cannot tell cheaply (PostgreSQL), absent, and nothing read is kept.
   */
  readonly changed?: () => boolean;
  /** Whether the database answers (for readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What concerns are built over: statements outside or inside a transaction, and `atomic`, which
 * runs several statements as one change (a new transaction, or the one already open).
 */
export interface Db {
  readonly sql: Sql;
  /** Hot reads kept while the database is unchanged (outside transactions only). */
  readonly reads: Reads;
  atomic<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
}

/** A row lock on what a SELECT reads (PostgreSQL). SQLite has one writer at a time: no clause needed. */
export function lockRows(sql: Sql, mode: 'update' | 'share'): string {
  return sql.dialect === 'postgres' ? ` FOR ${mode === 'update' ? 'UPDATE' : 'SHARE'}` : '';
}

/** `$1, $2, …` for a list of n values starting after `offset` parameters. */
export function placeholders(count: number, offset = 0): string {
  return Array.from({ length: count }, (_, i) => `$${offset + i + 1}`).join(', ');
}
