import { randomUUID } from 'node:crypto';
import type { Db, Sql } from './sql.js';
import type { LoginAttemptRecords, LoginLimits } from './types.js';

// Login attempts (auth.throttle) kept for every node on one database: a row per attempt, with
// its user name while it counts for that user (a success clears them). Reservations and
// successes from one address take turns (an advisory lock per address on PostgreSQL; SQLite has
// one writer), so nodes reserving at once never let more than the limit through. Each reservation
// deletes a batch of rows that left the window, skipping rows another transaction holds (so it
// never waits for one): the table holds about the attempts of one window. Times are the
// reserving node's clock, as upload locks' and the collector lease's are: on nodes whose clocks
// differ by s, an attempt leaves the window s apart; what is counted is the same for all.

/** Rows that left the window a reservation deletes at most (it adds one). */
const sweepBatch = 100;

/** Waits for this address's turn until the transaction ends. Two-key advisory locks: apart from migrate's one-key lock. */
async function takeTurn(sql: Sql, address: string): Promise<void> {
  if (sql.dialect === 'postgres') await sql.run('SELECT pg_advisory_xact_lock(7297811, hashtext($1))', [address]);
}

export class SqlLoginAttempts implements LoginAttemptRecords {
  constructor(private readonly db: Db) {}

  reserve({ user, address, now }: { user: string; address: string; now: number }, limits: LoginLimits): Promise<{ id: string } | { freedAt: number }> {
    const since = now - limits.windowMs;
    return this.db.atomic(async (sql) => {
      await takeTurn(sql, address);
      const skipLocked = sql.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
      await sql.run(`DELETE FROM login_attempts WHERE id IN (SELECT id FROM login_attempts WHERE at <= $1 LIMIT ${sweepBatch}${skipLocked})`, [since]);
      // The attempt, of the pair's and of the address's, whose leaving the window would free a place: none while under the limit.
      const freeing = await sql.get<{ pair: number | string | null; single: number | string | null }>(
        `SELECT (SELECT at FROM login_attempts WHERE address = $1 AND username = $2 AND at > $3 ORDER BY at DESC LIMIT 1 OFFSET $4) AS pair,
          (SELECT at FROM login_attempts WHERE address = $1 AND at > $3 ORDER BY at DESC LIMIT 1 OFFSET $5) AS single`,
        [address, user, since, limits.perUser - 1, limits.perAddress - 1],
      );
      const at = [freeing?.pair, freeing?.single].filter((time) => time !== null && time !== undefined).map(Number);
      if (at.length > 0) return { freedAt: Math.max(...at) + limits.windowMs };
      const id = randomUUID();
      await sql.run('INSERT INTO login_attempts (id, address, username, at) VALUES ($1, $2, $3, $4)', [id, address, user, now]);
      return { id };
    });
  }

  succeeded({ id, user, address }: { id: string; user: string; address: string }): Promise<void> {
    return this.db.atomic(async (sql) => {
      await takeTurn(sql, address);
      await sql.run('DELETE FROM login_attempts WHERE id = $1', [id]);
      await sql.run('UPDATE login_attempts SET username = NULL WHERE address = $1 AND username = $2', [address, user]);
    });
  }
}
