import type { AuthConfig } from '../config/auth.js';

// Users, access tokens and removals of user names as the server sees them. They live in the
// database (store/metadata/accounts.ts), written by the `wharf user` and `wharf token` commands
// while the server runs. The server keeps a snapshot in memory for the hot path and loads it again
// when the database's change counter moves: polled once a second (cheap: one row), and before
// every login.

export interface Account {
  readonly name: string;
  readonly passwordHash: string;
  readonly groups: readonly string[];
  readonly admin: boolean;
  readonly createdAt: number;
  readonly passwordChangedAt: number;
}

/** Spare time for clocks that differ between hosts, and for servers still on the snapshot from before a removal. */
const removalMarginMs = 60 * 60_000;

/**
 * How long the removal of a user name is needed: while a token issued before it may still be
 * valid. Bearer and refresh tokens carry `added` (jwt.ts) and live auth.tokenLifetime and
 * auth.refreshTokenLifetime; access tokens need none (a removal revokes them).
 */
export function removalNeededFor(auth: Pick<AuthConfig, 'tokenLifetime' | 'refreshTokenLifetime'>): number {
  return Math.max(auth.tokenLifetime, auth.refreshTokenLifetime) + removalMarginMs;
}

/** The last removal of a user name (never before that user was added). */
export interface Removal {
  readonly name: string;
  readonly removedAt: number;
}

export interface AccessTokenRecord {
  readonly id: string;
  readonly owner: string;
  readonly secretHash: string;
  /** Scope strings (repository:<key>/<pattern>:<actions>); empty: all the owner may do. */
  readonly scope: readonly string[];
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/** What the server reads (and the little it writes) of the account store. */
export interface Accounts {
  changeCounter(): Promise<number>;
  listUsers(): Promise<Account[]>;
  listTokens(): Promise<AccessTokenRecord[]>;
  getUser(name: string): Promise<Account | null>;
  listRemovals(): Promise<Removal[]>;
  noteTokenUses(uses: readonly { id: string; at: number }[]): Promise<void>;
}

export interface DirectoryOptions {
  /** Called after a new snapshot was loaded, with its change counter (caches built on the old one must go). */
  onChange: (version: number) => void;
  onError: (error: unknown) => void;
  now: () => number;
}

/** Token last-use times are written in batches, at most this often. */
const useFlushTicks = 10;

export class AccountDirectory {
  readonly #accounts: Accounts;
  readonly #options: DirectoryOptions;
  #users = new Map<string, Account>();
  #tokens = new Map<string, AccessTokenRecord>();
  #removals = new Map<string, number>();
  #version: number | null = null;
  #loading: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #ticks = 0;
  readonly #uses = new Map<string, number>();

  constructor(accounts: Accounts, options: DirectoryOptions) {
    this.#accounts = accounts;
    this.#options = options;
  }

  /** Loads a new snapshot if the change counter moved; concurrent callers share one load. */
  refresh(): Promise<void> {
    this.#loading ??= this.#load().finally(() => { this.#loading = null; });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const version = await this.#accounts.changeCounter();
    if (version === this.#version) return;
    const [users, tokens] = await Promise.all([this.#accounts.listUsers(), this.#accounts.listTokens()]);
    // Read after the users (each read sees at least what the one before it saw): a snapshot that
    // holds a user added again also holds the removal of the one before.
    const removals = await this.#accounts.listRemovals();
    this.#users = new Map(users.map((user) => [user.name, user]));
    this.#tokens = new Map(tokens.map((token) => [token.id, token]));
    this.#removals = new Map(removals.map((removal) => [removal.name, removal.removedAt]));
    this.#version = version;
    this.#options.onChange(version);
  }

  /** Polls the change counter every `intervalMs` without keeping the process alive. */
  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => {
      this.refresh().catch(this.#options.onError);
      if (++this.#ticks % useFlushTicks === 0) this.#flushUses().catch(this.#options.onError);
    }, intervalMs);
    this.#timer.unref();
  }

  user(name: string): Account | undefined {
    return this.#users.get(name);
  }

  /** When a user of this name was last removed, if ever. */
  removedAt(name: string): number | undefined {
    return this.#removals.get(name);
  }

  /** Whose token `id` is, usable or not: the name its use is throttled and audited under. */
  tokenOwner(id: string): string | undefined {
    return this.#tokens.get(id)?.owner;
  }

  /** A token that may be used now: known, not revoked, not expired, its owner still there. */
  usableToken(id: string): AccessTokenRecord | undefined {
    const token = this.#tokens.get(id);
    if (!token || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= this.#options.now()) || !this.#users.has(token.owner)) return undefined;
    return token;
  }

  /** Whether any user exists (first start creates an admin otherwise). */
  get empty(): boolean {
    return this.#users.size === 0;
  }

  noteUse(id: string): void {
    this.#uses.set(id, this.#options.now());
  }

  async #flushUses(): Promise<void> {
    if (this.#uses.size === 0) return;
    const uses = [...this.#uses].map(([id, at]) => ({ id, at }));
    this.#uses.clear();
    await this.#accounts.noteTokenUses(uses);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#flushUses();
  }
}

/** User and group names: what fits Basic auth and a log line (no colon, no space), like e-mail addresses. */
export function isValidAccountName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(name) && name !== 'anonymous';
}

/** The shortest password `wharf user` accepts. */
export const minPasswordLength = 8;
