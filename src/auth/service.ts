import type { AuthConfig, PermissionTarget } from '../config/auth.js';
import { RegistryError } from '../oci/errors.js';
import { RequestAccess, type Access } from './access.js';
import { AccountDirectory, type Accounts } from './accounts.js';
import { parseAccessToken } from './access-tokens.js';
import type { Audit } from './audit.js';
import { grantScopes, type ScopeTarget } from './grants.js';
import { TokenService, type Grant, type TokenSubject } from './jwt.js';
import type { SigningKey } from './keys.js';
import { Sealer } from './sealer.js';
import { unusableHash, VerifiedPasswords, verifyPassword } from './passwords.js';
import { Authorizer } from './permissions.js';
import { principalKey, type Principal } from './principal.js';
import { Principals } from './principals.js';
import type { ScopeRequest } from './scopes.js';
import { LoginThrottle, throttleOptions, type LoginAttempt, type LoginAttempts } from './throttle.js';

// Authentication: who a caller is, from a password or access token (Basic, or the token
// endpoint), a bearer JWT we issued, or nothing at all (anonymous). Passwords are checked against
// the database at login; a successful check is remembered while it is used at least once a minute
// (VerifiedPasswords), so Basic on every registry request runs no scrypt.

export interface Credentials {
  username: string;
  password: string;
  /** An access token sent as Bearer (bearerAsBasic): `username` was not sent, so it is not checked. */
  bearer?: boolean;
}

export interface AuthServiceOptions {
  config: AuthConfig;
  /** Where login attempts are counted (workers: the primary's); default: a LoginThrottle here. */
  loginAttempts?: LoginAttempts;
  permissions: readonly PermissionTarget[];
  accounts: Accounts;
  key: SigningKey;
  audit: Audit;
  now: () => number;
  onError: (error: unknown) => void;
  hooks?: LoginHooks;
}

/** Points where tests hold a login to force an interleaving, or wait for the accounts. */
export interface LoginHooks {
  /** A new account snapshot is loaded (its change counter): what a CLI change did is known now. */
  snapshot?(version: number): void;
  /** After the attempt is counted, before its password is checked (the slow part). */
  reserved?(username: string): Promise<void>;
  /** A password is checked against its stored hash (a scrypt). */
  hashing?(): void;
}

export interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

const credentialTtlMs = 60_000;

export class AuthService {
  readonly config: AuthConfig;
  readonly tokens: TokenService;
  /** Seals search cursors, which may point past images the caller may not read. */
  readonly cursors: Sealer;
  readonly authorizer: Authorizer;
  readonly directory: AccountDirectory;
  readonly #accounts: Accounts;
  readonly audit: Audit;
  readonly #now: () => number;
  readonly #throttle: LoginAttempts;
  readonly #passwords: VerifiedPasswords;
  readonly #principals: Principals;
  readonly #hooks: LoginHooks;

  constructor(options: AuthServiceOptions) {
    this.config = options.config;
    this.#accounts = options.accounts;
    this.audit = options.audit;
    this.#now = options.now;
    this.#hooks = options.hooks ?? {};
    this.authorizer = new Authorizer(options.permissions);
    this.cursors = new Sealer(options.key.privateKey, 'wharf search cursor');
    this.tokens = new TokenService({ key: options.key, service: options.config.service, lifetimeMs: options.config.tokenLifetime, refreshLifetimeMs: options.config.refreshTokenLifetime, now: options.now });
    const { hashing } = this.#hooks;
    this.#passwords = new VerifiedPasswords({
      ttlMs: credentialTtlMs, now: options.now,
      ...(hashing ? { verify: (password, encoded) => { hashing(); return verifyPassword(password, encoded); } } : {}),
    });
    this.#throttle = options.loginAttempts ?? new LoginThrottle(throttleOptions(options.config.throttle, options.now));
    this.directory = new AccountDirectory(options.accounts, {
      now: options.now,
      onError: options.onError,
      onChange: (version) => {
        this.authorizer.forget();
        this.#principals.forget();
        this.#hooks.snapshot?.(version);
      },
    });
    this.#principals = new Principals(this.directory);
  }

  /** Loads the accounts and starts watching them for changes. */
  async start(): Promise<void> {
    await this.directory.refresh();
    this.directory.start();
  }

  /** New permission targets (a config reload); cached decisions go with the old ones. */
  update(permissions: readonly PermissionTarget[]): void {
    this.authorizer.update(permissions);
  }

  access(principal: Principal, grants: ReadonlySet<string> | null): Access {
    return new RequestAccess(principal, grants, this.authorizer);
  }

  /** The principal a bearer JWT speaks for now, or null (its user removed, its access token revoked). */
  principalOf(to: TokenSubject): Principal | null {
    return this.#principals.of(to);
  }

  /**
   * An access token sent as a Bearer credential, as the Basic credentials it stands for
   * (`owner:wharf_…`): both forms are then checked, throttled and audited by one path. The owner
   * is the snapshot's (`token:<id>` for an id it does not know), the name the attempt is counted
   * and audited under; null for other bearer tokens (JWTs).
   */
  bearerAsBasic(token: string): Credentials | null {
    const parsed = parseAccessToken(token);
    return parsed && { username: this.directory.tokenOwner(parsed.id) ?? `token:${parsed.id}`, password: token, bearer: true };
  }

  /**
   * Basic on a registry request, without waiting: the user whose credentials (`basic`: base64 of
   * user:password, as sent) were verified lately against the hash the snapshot holds now (no
   * attempt counted, nothing audited: nothing was checked but a digest); null otherwise, and
   * login() decides.
   */
  remembered(basic: string): Principal | null {
    const user = this.#passwords.remembers(basic, (name) => this.directory.user(name)?.passwordHash);
    return user === null ? null : this.#principals.user(user);
  }

  /**
   * An access token sent as a Basic password by its owner (`curl -u ci:wharf_…`), on a registry
   * request: checked from the snapshot as its Bearer form is, so neither a login attempt nor an
   * audit line per request; null otherwise (not a token, not theirs, revoked), and login() decides
   * and audits the failure.
   */
  tokenAsPassword(credentials: Credentials): Principal | null {
    return parseAccessToken(credentials.password) ? this.#checkToken(credentials) : null;
  }

  /**
   * Checks a user name with a password or access token. `fresh`: read the user from the database
   * (token endpoint logins) rather than from the snapshot (Basic on registry requests).
   */
  async login(credentials: Credentials, from: string, options: { fresh: boolean }): Promise<Principal> {
    const { username, password } = credentials;
    const token = parseAccessToken(password);
    let attempt: LoginAttempt;
    try {
      attempt = await this.#throttle.reserve(username, from);
    } catch (error) {
      // Only a refusal by the counts is a throttled login; anything else (the database out of reach) is an error.
      const throttled = error instanceof RegistryError && error.code === 'TOOMANYREQUESTS';
      this.audit.record({ who: username, from, action: 'login', result: throttled ? 'throttled' : 'error' });
      throw error;
    }
    await this.#hooks.reserved?.(username);
    if (options.fresh) await this.directory.refresh();
    const principal = token ? this.#checkToken(credentials) : await this.#checkPassword(credentials, options.fresh);
    if (!principal) {
      this.audit.record({ who: username, from, action: 'login', result: 'failed' });
      throw new RegistryError('UNAUTHORIZED', { message: credentials.bearer ? 'the access token is not valid (unknown, revoked or expired)' : 'invalid user name or password' });
    }
    await attempt.succeeded();
    this.audit.record({ who: principalKey(principal), from, action: 'login', result: 'ok' });
    return principal;
  }

  /** The access token's principal, when it is usable and (sent as Basic) the user named is its owner. */
  #checkToken(credentials: Credentials): Principal | null {
    const principal = this.#principals.fromAccessToken(credentials.password);
    return principal?.kind === 'token' && (credentials.bearer === true || principal.name === credentials.username) ? principal : null;
  }

  async #checkPassword(credentials: Credentials, fresh: boolean): Promise<Principal | null> {
    const { username, password } = credentials;
    const user = fresh ? await this.#accounts.getUser(username) : this.directory.user(username);
    // Unknown users are checked against a hash no password matches: they take as long as known ones.
    const ok = await this.#passwords.check(username, password, user?.passwordHash ?? unusableHash);
    if (!ok || !user) return null;
    // A user just added by the CLI may not be in the snapshot yet.
    if (!this.directory.user(user.name)) await this.directory.refresh();
    return this.#principals.user(user.name);
  }

  /** The refresh token's user (or access token), if still valid: the user exists and kept their password. */
  async refresh(refreshToken: string, from: string): Promise<Principal> {
    const claims = await this.tokens.verifyRefresh(refreshToken);
    await this.directory.refresh();
    const user = claims && (await this.#accounts.getUser(claims.subject));
    const principal = user && user.passwordChangedAt === claims.passwordChangedAt ? this.principalOf(claims) : null;
    if (!principal) {
      this.audit.record({ who: claims?.subject ?? '-', from, action: 'refresh', result: 'failed' });
      throw new RegistryError('UNAUTHORIZED', { message: 'the refresh token is not valid (expired, revoked, or the password changed): log in again' });
    }
    return principal;
  }

  grant(principal: Principal, scopes: readonly ScopeRequest[], resolve: (name: string) => ScopeTarget | null): Grant[] {
    return grantScopes(this.authorizer, principal, scopes, resolve);
  }

  async answer(principal: Principal, grants: Grant[], options: { offline: boolean }): Promise<TokenAnswer> {
    const to: TokenSubject = principal.kind === 'anonymous'
      ? { subject: '', tokenId: null, addedAt: 0 }
      : { subject: principal.name, tokenId: principal.kind === 'token' ? principal.tokenId : null, addedAt: principal.addedAt };
    const token = await this.tokens.issue(to, grants);
    const answer: TokenAnswer = { token, access_token: token, expires_in: this.tokens.lifetimeSeconds, issued_at: new Date(this.#now()).toISOString() };
    if (options.offline && principal.kind !== 'anonymous') {
      const user = await this.#accounts.getUser(principal.name);
      if (user) answer.refresh_token = await this.tokens.issueRefresh({ ...to, passwordChangedAt: user.passwordChangedAt });
    }
    return answer;
  }

  async close(): Promise<void> {
    await this.directory.close();
  }
}
