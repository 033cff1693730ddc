import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { storageFailure } from '../full.js';
import { processAlive } from '../process-alive.js';
import { mutex } from './mutex.js';
import { watchCommits } from './wal-header.js';
import type { Sql, SqlDatabase } from './sql.js';

// SQLite through better-sqlite3 (synchronous, microseconds per statement). Two connections:
// writes go through one, serialized by an async mutex so that a transaction whose work awaits
// (a blob being committed between two statements) never interleaves with another write; reads
// outside transactions go to a second, read-only connection, which in WAL mode sees only
// committed data. Other processes (`wharf gc`, a second worker) may open the same file: the busy
// timeout makes them wait for each other's short transactions instead of failing. A rehearsal
// (a dry run) works on a copy, so that it never holds the one write lock for its whole length.

interface Prepared {
  text: string;
  write: Database.Statement;
  /** The same statement on the read connection, prepared on first autocommit use. */
  read?: Database.Statement;
  /** Which $N each positional ? takes. */
  order: number[];
}

export interface SqliteOptions {
  /** How long a statement waits for another process's write lock (ms). */
  busyTimeoutMs?: number;
  /** Told when a write fails because the disk is full (it becomes STORAGE_FULL). */
  log?: (message: string) => void;
}

function toSqlite(text: string): { text: string; order: number[] } {
  const order: number[] = [];
  return { text: text.replace(/\$(\d+)/g, (_, n: string) => { order.push(Number(n) - 1); return '?'; }), order };
}

/**
 * The database holds password hashes: it is its owner's alone (0600), created so and tightened if
 * an older run left it wider. SQLite gives the -wal and -shm files the database file's mode.
 */
function ownerOnly(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}

/** Prepares statements on `connection` once each; `direct` runs them as they come. */
function statementsOn(connection: Database.Database): { statement(text: string): Prepared; direct: Sql } {
  const prepared = new Map<string, Prepared>();
  const statement = (text: string): Prepared => {
    let entry = prepared.get(text);
    if (!entry) {
      const translated = toSqlite(text);
      entry = { text: translated.text, write: connection.prepare(translated.text), order: translated.order };
      prepared.set(text, entry);
    }
    return entry;
  };
  const direct: Sql = {
    dialect: 'sqlite',
    all: async <T>(text: string, params: readonly unknown[] = []) => { const s = statement(text); return s.write.all(...bind(s, params)) as T[]; },
    get: async <T>(text: string, params: readonly unknown[] = []) => { const s = statement(text); return s.write.get(...bind(s, params)) as T | undefined; },
    run: async (text, params = []) => { const s = statement(text); return s.write.run(...bind(s, params)).changes; },
  };
  return { statement, direct };
}

function bind(entry: Prepared, params: readonly unknown[]): unknown[] {
  return entry.order.map((i) => params[i] ?? null);
}

/** A rehearsal's copy lives in `<dir of the database>/.rehearsal-<pid>-XXXXXX/`. */
const rehearsalPrefix = '.rehearsal-';

/**
 * Removes the copies of rehearsals whose process is gone (a killed dry run): each is a whole
 * database, password hashes included. A running one's (this or another process) is kept.
 */
function removeLeftoverRehearsals(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(rehearsalPrefix)) continue;
    const pid = Number(name.slice(rehearsalPrefix.length).split('-')[0]);
    if (!(Number.isInteger(pid) && pid > 0 && processAlive(pid))) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** Runs `work` in a transaction on a fresh copy of `source`, then drops the copy and all it changed. */
async function onCopy<T>(source: Database.Database, work: (sql: Sql) => Promise<T>): Promise<T> {
  // Beside the database (the disk that has room for it, not a tmpfs), in a directory only its
  // owner can enter: the copy holds password hashes as the database does.
  const dir = await mkdtemp(join(dirname(source.name), `${rehearsalPrefix}${process.pid}-`));
  try {
    const file = join(dir, 'meta.db');
    ownerOnly(file); // the backup keeps the mode of the file it writes into
    // The backup runs in steps between which the server goes on; writes on `source` itself are
    // carried into the copy, so it is consistent when the backup ends.
    await source.backup(file);
    const copy = new Database(file);
    try {
      copy.exec('BEGIN IMMEDIATE');
      return await work(statementsOn(copy).direct);
    } finally {
      copy.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function openSqlite(path: string, options: SqliteOptions = {}): SqlDatabase {
  const timeout = options.busyTimeoutMs ?? 5000;
  ownerOnly(path);
  removeLeftoverRehearsals(dirname(path));
  const writer = new Database(path, { timeout });
  const wal = writer.pragma('journal_mode = WAL', { simple: true }) === 'wal';
  writer.pragma('synchronous = FULL');
  let reader: Database.Database | null = null;
  const { statement, direct } = statementsOn(writer);
  const commits = wal ? watchCommits(path) : null;
  const lock = mutex();
  const log = options.log ?? (() => undefined);
  /** One writer at a time; a full disk is STORAGE_FULL, not an internal error. */
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => lock(() => work().catch((error: unknown) => { throw storageFailure(error, log); }));

  /** The read-connection statement for a read, or null for a write. */
  const readOnly = (entry: Prepared): Database.Statement | null => {
    if (!entry.write.readonly) return null;
    // Opened on first use, once the schema exists (a read-only connection cannot create it).
    reader ??= new Database(path, { readonly: true, timeout });
    return (entry.read ??= reader.prepare(entry.text));
  };

  /** Autocommit: reads from the read connection, writes one at a time on the write connection. */
  const autocommit: Sql = {
    dialect: 'sqlite',
    all: async <T>(text: string, params: readonly unknown[] = []) => {
      const s = statement(text);
      const read = readOnly(s);
      return read ? (read.all(...bind(s, params)) as T[]) : exclusive(() => direct.all<T>(text, params));
    },
    get: async <T>(text: string, params: readonly unknown[] = []) => {
      const s = statement(text);
      const read = readOnly(s);
      return read ? (read.get(...bind(s, params)) as T | undefined) : exclusive(() => direct.get<T>(text, params));
    },
    run: (text, params = []) => exclusive(() => direct.run(text, params)),
  };

  return {
    sql: autocommit,
    transaction: <T>(work: (sql: Sql) => Promise<T>) => exclusive(async () => {
      writer.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(direct);
        writer.exec('COMMIT');
        return result;
      } catch (error) {
        if (writer.inTransaction) writer.exec('ROLLBACK');
        throw error;
      }
    }),
    rehearse: (work) => onCopy(writer, work),
    ...(commits ? { changed: commits.changed } : {}),
    ping: async () => { writer.prepare('SELECT 1').get(); },
    close: async () => lock(async () => {
      commits?.close();
      reader?.close();
      writer.close();
    }),
  };
}
