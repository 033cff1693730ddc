import type { Db, Sql } from './sql.js';
import type { Accounts, ForgetRemovals, RemovalRecord, TokenRecord, UserRecord } from './types.js';

// Users, access tokens and the last removal of each user name, for access control. `wharf user`
// and `wharf token` write them while the server runs (from another process, or another node on
// PostgreSQL); every change bumps one counter in the same transaction, which servers poll to know
// when to reload their snapshot.

interface UserRow { name: string; password_hash: string; groups: string; admin: number | string; created_at: number | string; updated_at: number | string; password_changed_at: number | string }
interface TokenRow {
  id: string; owner: string; secret_hash: string; scope: string; expires_at: number | string | null; description: string;
  created_at: number | string; last_used_at: number | string | null; revoked_at: number | string | null;
}

// PostgreSQL's BIGINT arrives as a string.
const time = (value: number | string | null): number | null => (value === null ? null : Number(value));

const toUser = (row: UserRow): UserRecord => ({
  name: row.name, passwordHash: row.password_hash, groups: JSON.parse(row.groups) as string[], admin: Number(row.admin) === 1,
  createdAt: Number(row.created_at), updatedAt: Number(row.updated_at), passwordChangedAt: Number(row.password_changed_at),
});

const toToken = (row: TokenRow): TokenRecord => ({
  id: row.id, owner: row.owner, secretHash: row.secret_hash, scope: JSON.parse(row.scope) as string[], expiresAt: time(row.expires_at),
  description: row.description, createdAt: Number(row.created_at), lastUsedAt: time(row.last_used_at), revokedAt: time(row.revoked_at),
});

export class SqlAccounts implements Accounts {
  constructor(private readonly db: Db) {}

  /** Runs `change` in one transaction with the counter bump, when it reports that it changed something. */
  #change(change: (sql: Sql) => Promise<boolean>): Promise<boolean> {
    return this.db.atomic(async (sql) => {
      const changed = await change(sql);
      if (changed) await sql.run('UPDATE auth_changes SET counter = counter + 1 WHERE id = 1');
      return changed;
    });
  }

  async changeCounter(): Promise<number> {
    const row = await this.db.sql.get<{ counter: number | string }>('SELECT counter FROM auth_changes WHERE id = 1');
    return Number(row?.counter ?? 0);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.db.sql.all<UserRow>('SELECT * FROM auth_users ORDER BY name')).map(toUser);
  }

  async getUser(name: string): Promise<UserRecord | null> {
    const row = await this.db.sql.get<UserRow>('SELECT * FROM auth_users WHERE name = $1', [name]);
    return row ? toUser(row) : null;
  }

  /** Drops removals no token can need any more (the caller knows how long tokens live). */
  async #forgetRemovals(sql: Sql, options: ForgetRemovals): Promise<void> {
    if (options.forgetRemovalsBefore !== undefined) await sql.run('DELETE FROM auth_removals WHERE removed_at < $1', [options.forgetRemovalsBefore]);
  }

  addUser(user: UserRecord, options: ForgetRemovals = {}): Promise<boolean> {
    return this.#change(async (sql) => {
      if ((await sql.run(
        `INSERT INTO auth_users (name, password_hash, groups, admin, created_at, updated_at, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
        [user.name, user.passwordHash, JSON.stringify(user.groups), user.admin ? 1 : 0, user.createdAt, user.updatedAt, user.passwordChangedAt],
      )) !== 1) return false;
      // Added after the name's last removal whatever the clocks say (a removal in the same
      // millisecond, hosts whose clocks differ): else the new user's own tokens would count as the old one's.
      await sql.run(
        `UPDATE auth_users SET created_at = (SELECT removed_at + 1 FROM auth_removals WHERE name = $1)
         WHERE name = $1 AND created_at <= (SELECT removed_at FROM auth_removals WHERE name = $1)`, [user.name],
      );
      await this.#forgetRemovals(sql, options);
      return true;
    });
  }

  setPassword(name: string, passwordHash: string, at: number): Promise<boolean> {
    return this.#change(async (sql) => (await sql.run(
      'UPDATE auth_users SET password_hash = $1, updated_at = $2, password_changed_at = $2 WHERE name = $3', [passwordHash, at, name],
    )) === 1);
  }

  removeUser(name: string, at: number, options: ForgetRemovals = {}): Promise<boolean> {
    return this.#change(async (sql) => {
      const removed = await sql.get<{ created_at: number | string }>('DELETE FROM auth_users WHERE name = $1 RETURNING created_at', [name]);
      if (!removed) return false;
      await sql.run('UPDATE auth_tokens SET revoked_at = $1 WHERE owner = $2 AND revoked_at IS NULL', [at, name]);
      // Never before the user was added, whatever the clocks of the hosts that added and removed them.
      await sql.run(
        'INSERT INTO auth_removals (name, removed_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET removed_at = excluded.removed_at',
        [name, Math.max(at, Number(removed.created_at))],
      );
      await this.#forgetRemovals(sql, options);
      return true;
    });
  }

  async listRemovals(): Promise<RemovalRecord[]> {
    return (await this.db.sql.all<{ name: string; removed_at: number | string }>('SELECT name, removed_at FROM auth_removals'))
      .map((row) => ({ name: row.name, removedAt: Number(row.removed_at) }));
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.sql.all<TokenRow>('SELECT * FROM auth_tokens ORDER BY created_at, id')).map(toToken);
  }

  async addToken(token: TokenRecord): Promise<void> {
    await this.#change(async (sql) => (await sql.run(
      `INSERT INTO auth_tokens (id, owner, secret_hash, scope, expires_at, description, created_at, last_used_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [token.id, token.owner, token.secretHash, JSON.stringify(token.scope), token.expiresAt, token.description, token.createdAt, token.lastUsedAt, token.revokedAt],
    )) === 1);
  }

  revokeToken(id: string, at: number): Promise<boolean> {
    return this.#change(async (sql) => (await sql.run('UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])) === 1);
  }

  /** Not a change servers must reload for: no counter bump. */
  async noteTokenUses(uses: readonly { id: string; at: number }[]): Promise<void> {
    if (uses.length === 0) return;
    await this.db.atomic(async (sql) => {
      for (const use of uses) {
        await sql.run('UPDATE auth_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)', [use.at, use.id]);
      }
    });
  }
}
