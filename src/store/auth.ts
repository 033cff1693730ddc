import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

// Users and access tokens: a small async interface (so a PostgreSQL implementation can stand
// behind it) and its SQLite implementation. It opens its own connection to the metadata
// database file (WAL) and keeps its own tables; `wharf user` and `wharf token` write here while
// the server runs. Every change bumps one counter in the same transaction, which the server
// polls to know when to reload.

export interface UserRecord {
  name: string;
  /** scrypt$N$r$p$salt$hash (auth/passwords.ts); never a clear-text password. */
  passwordHash: string;
  groups: string[];
  admin: boolean;
  createdAt: number;
  updatedAt: number;
  passwordChangedAt: number;
}

export interface TokenRecord {
  id: string;
  owner: string;
  /** SHA-256 of the token's secret (auth/access-tokens.ts). */
  secretHash: string;
  scope: string[];
  expiresAt: number | null;
  description: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface AuthStore {
  changeCounter(): Promise<number>;
  listUsers(): Promise<UserRecord[]>;
  getUser(name: string): Promise<UserRecord | null>;
  /** Adds a user; false when the name is taken. */
  addUser(user: UserRecord): Promise<boolean>;
  /** Sets a new password hash; false for an unknown user. */
  setPassword(name: string, passwordHash: string, at: number): Promise<boolean>;
  /** Removes a user and revokes their tokens; false for an unknown user. */
  removeUser(name: string, at: number): Promise<boolean>;
  listTokens(): Promise<TokenRecord[]>;
  addToken(token: TokenRecord): Promise<void>;
  /** false for an unknown or already revoked token. */
  revokeToken(id: string, at: number): Promise<boolean>;
  noteTokenUses(uses: readonly { id: string; at: number }[]): Promise<void>;
  close(): Promise<void>;
}

const schema = `
CREATE TABLE IF NOT EXISTS auth_users (
  name TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  groups TEXT NOT NULL,          -- JSON array
  admin INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  password_changed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_tokens (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scope TEXT NOT NULL,           -- JSON array
  expires_at INTEGER,
  description TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS auth_changes (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  counter INTEGER NOT NULL
);
INSERT OR IGNORE INTO auth_changes (id, counter) VALUES (1, 0);
`;

interface UserRow { name: string; password_hash: string; groups: string; admin: number; created_at: number; updated_at: number; password_changed_at: number }
interface TokenRow { id: string; owner: string; secret_hash: string; scope: string; expires_at: number | null; description: string; created_at: number; last_used_at: number | null; revoked_at: number | null }

const toUser = (row: UserRow): UserRecord => ({
  name: row.name, passwordHash: row.password_hash, groups: JSON.parse(row.groups) as string[], admin: row.admin === 1,
  createdAt: row.created_at, updatedAt: row.updated_at, passwordChangedAt: row.password_changed_at,
});

const toToken = (row: TokenRow): TokenRecord => ({
  id: row.id, owner: row.owner, secretHash: row.secret_hash, scope: JSON.parse(row.scope) as string[], expiresAt: row.expires_at,
  description: row.description, createdAt: row.created_at, lastUsedAt: row.last_used_at, revokedAt: row.revoked_at,
});

export class SqliteAuthStore implements AuthStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    // The server and the wharf command write this file at the same time.
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(schema);
    const db = this.#db;
    this.#statements = {
      counter: db.prepare<[], { counter: number }>('SELECT counter FROM auth_changes WHERE id = 1'),
      bump: db.prepare('UPDATE auth_changes SET counter = counter + 1 WHERE id = 1'),
      users: db.prepare<[], UserRow>('SELECT * FROM auth_users ORDER BY name'),
      user: db.prepare<[string], UserRow>('SELECT * FROM auth_users WHERE name = ?'),
      addUser: db.prepare('INSERT OR IGNORE INTO auth_users VALUES (@name, @password_hash, @groups, @admin, @created_at, @updated_at, @password_changed_at)'),
      setPassword: db.prepare('UPDATE auth_users SET password_hash = ?, updated_at = ?, password_changed_at = ? WHERE name = ?'),
      removeUser: db.prepare('DELETE FROM auth_users WHERE name = ?'),
      revokeOwned: db.prepare('UPDATE auth_tokens SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL'),
      tokens: db.prepare<[], TokenRow>('SELECT * FROM auth_tokens ORDER BY created_at, id'),
      addToken: db.prepare('INSERT INTO auth_tokens VALUES (@id, @owner, @secret_hash, @scope, @expires_at, @description, @created_at, @last_used_at, @revoked_at)'),
      revoke: db.prepare('UPDATE auth_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      used: db.prepare('UPDATE auth_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?'),
    };
  }

  /** Runs `change` in one transaction with the counter bump, when it reports that it changed something. */
  #change(change: () => boolean): boolean {
    return this.#db.transaction(() => {
      const changed = change();
      if (changed) this.#statements.bump.run();
      return changed;
    }).immediate();
  }

  async changeCounter(): Promise<number> {
    return this.#statements.counter.get()!.counter;
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.#statements.users.all().map(toUser);
  }

  async getUser(name: string): Promise<UserRecord | null> {
    const row = this.#statements.user.get(name);
    return row ? toUser(row) : null;
  }

  async addUser(user: UserRecord): Promise<boolean> {
    return this.#change(() => this.#statements.addUser.run({
      name: user.name, password_hash: user.passwordHash, groups: JSON.stringify(user.groups), admin: user.admin ? 1 : 0,
      created_at: user.createdAt, updated_at: user.updatedAt, password_changed_at: user.passwordChangedAt,
    }).changes === 1);
  }

  async setPassword(name: string, passwordHash: string, at: number): Promise<boolean> {
    return this.#change(() => this.#statements.setPassword.run(passwordHash, at, at, name).changes === 1);
  }

  async removeUser(name: string, at: number): Promise<boolean> {
    return this.#change(() => {
      if (this.#statements.removeUser.run(name).changes !== 1) return false;
      this.#statements.revokeOwned.run(at, name);
      return true;
    });
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.#statements.tokens.all().map(toToken);
  }

  async addToken(token: TokenRecord): Promise<void> {
    this.#change(() => this.#statements.addToken.run({
      id: token.id, owner: token.owner, secret_hash: token.secretHash, scope: JSON.stringify(token.scope), expires_at: token.expiresAt,
      description: token.description, created_at: token.createdAt, last_used_at: token.lastUsedAt, revoked_at: token.revokedAt,
    }).changes === 1);
  }

  async revokeToken(id: string, at: number): Promise<boolean> {
    return this.#change(() => this.#statements.revoke.run(at, id).changes === 1);
  }

  async noteTokenUses(uses: readonly { id: string; at: number }[]): Promise<void> {
    // Not a change the server must reload for: no counter bump.
    this.#db.transaction(() => { for (const use of uses) this.#statements.used.run(use.at, use.id); })();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
