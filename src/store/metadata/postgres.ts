import { createHash } from 'node:crypto';
import pg from 'pg';
import { outage, reasonOf, StorageConnectError, type Cause } from '../errors.js';
import type { Sql, SqlDatabase } from './sql.js';

// PostgreSQL through node-postgres: a pool, statements prepared once per connection by name,
// transactions at READ COMMITTED. The blob lifecycle's safety does not rest on the isolation
// level but on row locks: whoever takes a reference to a blob or manifest changes its row under
// a lock, and the collector locks its candidates FOR UPDATE and re-checks them in a new
// statement (which sees everything committed meanwhile). That needs no retry loop, which
// SERIALIZABLE would, on every push that meets a collection. Two transactions that take rows in
// opposite orders (a push takes its children's links then the tag; deleting an image takes the
// tags then the links) can still deadlock: PostgreSQL ends one, which is run again.

/** BIGINT (timestamps, sizes) and NUMERIC (SUM) as JavaScript numbers: they stay below 2^53. */
const numeric = new Set([20, 1700]);
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (numeric.has(oid) ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

export interface PostgresTimeouts {
  /** A new connection (ms). */
  connect: number;
  /** The server's answer to a statement (ms): a network partition does not wait for TCP to give up. */
  response: number;
}

export interface PostgresOptions {
  poolSize?: number;
  /** Default: 10 s and 60 s. */
  timeouts?: PostgresTimeouts;
  /** Where an outage is reported (once when the server goes, once when it is back). */
  log?: (message: string) => void;
}

/** SQLSTATEs of a transaction ended so that others could go on (deadlock, serialization failure): run it again. */
const retryable = new Set(['40P01', '40001']);
/** Runs of one transaction, at most: a second run waits for the transaction it deadlocked with. */
const runs = 3;

/** The messages of node-postgres's own timeouts (connectionTimeoutMillis, query_timeout). */
const timedOut = /^(timeout exceeded when trying to connect|Connection terminated due to connection timeout|Query read timeout)$/;

/**
 * The cause of a failure: its SQLSTATE or network code for callers; for the log, the server's own
 * words ('too many connections for role "wharf"'; never the password). A connection that ended
 * without a code (terminated, cut) is ECONNRESET; one of the client's own timeouts ETIMEDOUT.
 */
function causeOf(error: unknown): Cause {
  if (error instanceof Error && timedOut.test(error.message)) return { code: 'ETIMEDOUT', text: 'no answer within storage.metadata.timeouts' };
  if (error instanceof pg.DatabaseError) return { code: error.code ?? 'XX000', text: `${error.message} (SQLSTATE ${error.code})` };
  const code = reasonOf(error);
  return code === 'Error' ? { code: 'ECONNRESET', text: (error as Error).message } : { code, text: code };
}

/**
 * Whether a failure means the server is out of reach, not that a statement failed: a network
 * error, a connection cut or timed out, or SQLSTATE class 08 (connection exception), 57P0x (the
 * server shutting down or starting) or 53300 (too many connections: max_connections, or a role's
 * or database's limit).
 */
function unreachable(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return /^(08|57P0|53300$)/.test(error.code ?? '');
  return error instanceof Error && !(error instanceof TypeError);
}

/** "host:port" of a connection URL, for messages (never the credentials). */
function serverOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'the configured server';
  }
}

function over(query: (config: pg.QueryConfig) => Promise<pg.QueryResult>): Sql {
  const names = new Map<string, string>();
  const named = (text: string, values: readonly unknown[]): pg.QueryConfig => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `w${createHash('sha1').update(text).digest('hex').slice(0, 16)}`));
    return { name, text, values: values as unknown[] };
  };
  return {
    dialect: 'postgres',
    all: async <T>(text: string, params: readonly unknown[] = []) => (await query(named(text, params))).rows as T[],
    get: async <T>(text: string, params: readonly unknown[] = []) => (await query(named(text, params))).rows[0] as T | undefined,
    run: async (text, params = []) => (await query(named(text, params))).rowCount ?? 0,
  };
}

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<SqlDatabase> {
  const timeouts = options.timeouts ?? { connect: 10_000, response: 60_000 };
  const poolOf = (settings: pg.PoolConfig) => new pg.Pool({ connectionString: url, types: typeParsers, connectionTimeoutMillis: timeouts.connect, ...settings })
    // An idle connection that drops is replaced on next use; the query that meets it reports.
    .on('error', () => undefined);
  const pool = poolOf({ max: options.poolSize ?? 10, query_timeout: timeouts.response });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new StorageConnectError('metadata', `postgres at ${serverOf(url)}`, causeOf(error).text);
  }
  // From here on, a server out of reach answers 503 (UNAVAILABLE); the pool reconnects by itself.
  const log = options.log ?? (() => undefined);
  const watch = outage('the metadata database', log);
  const guarded = async <T>(attempt: () => Promise<T>, onLost: (error: Error) => void = () => undefined): Promise<T> => {
    try {
      const result = await attempt();
      watch.answered();
      return result;
    } catch (error) {
      if (!unreachable(error)) throw error;
      onLost(error as Error);
      throw watch.failed(causeOf(error));
    }
  };
  /** Runs `work` on one connection of `from` in a transaction, committed only when `commit` says so. */
  const inTransaction = async <T>(work: (sql: Sql) => Promise<T>, commit: boolean, from = pool): Promise<T> => {
    const client = await guarded(() => from.connect());
    // A connection out of reach (a statement timed out on it) is dropped, not rolled back: the
    // server rolls back when it goes, and a ROLLBACK would wait behind the lost statement.
    let lost: Error | undefined;
    const query = (config: pg.QueryConfig | string) => guarded(() => client.query(config), (error) => { lost = error; });
    // Checked out, a connection has no listener of the pool's: one cut between two statements (a
    // terminated backend, a server gone) would be an uncaught 'error' that ends the process.
    const onError = (error: Error) => { lost ??= error; };
    client.on('error', onError);
    try {
      await query('BEGIN');
      const result = await work(over(query));
      await query(commit ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (error) {
      if (!lost) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  };
  /** A transaction PostgreSQL ended to break a deadlock runs again (its work only reads and writes the database). */
  const transaction = async <T>(work: (sql: Sql) => Promise<T>): Promise<T> => {
    for (let run = 1; ; run++) {
      try {
        return await inTransaction(work, true);
      } catch (error) {
        if (run === runs || !(error instanceof pg.DatabaseError && retryable.has(error.code ?? ''))) throw error;
        log(`a transaction was ended by the metadata database (${causeOf(error).text}); running it again`);
      }
    }
  };
  return {
    sql: over((config) => guarded(() => pool.query(config))),
    transaction,
    // Not run again: a rehearsal's caller counts what its work finds.
    rehearse: (work) => inTransaction(work, false),
    async migrations(work) {
      // One connection with no statement timeout.
      const own = poolOf({ max: 1 });
      try {
        return await work((step) => inTransaction(step, true, own));
      } finally {
        await own.end();
      }
    },
    ping: async () => { await guarded(() => pool.query('SELECT 1')); },
    close: () => pool.end(),
  };
}
