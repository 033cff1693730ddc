import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { AuthConfig, PermissionTarget } from '../config/auth.js';
import { RegistryError } from '../oci/errors.js';
import { RequestAccess, type Access } from './access.js';
import { AccountDirectory, type Accounts } from './accounts.js';
import { parseAccessToken, secretMatches } from './access-tokens.js';
import type { Audit } from './audit.js';
import { grantScopes, type ScopeTarget } from './grants.js';
import { TokenService, type Grant } from './jwt.js';
import type { SigningKey } from './keys.js';
import { unusableHash, verifyPassword } from './passwords.js';
import { Authorizer } from './permissions.js';
import { anonymous, principalKey, type Principal } from './principal.js';
import type { ScopeRequest } from './scopes.js';
import { parseTokenScope } from './scopes.js';
import { LoginThrottle } from './throttle.js';

// Authentication: who a caller is, from a password or access token (Basic, or the token
// endpoint), a bearer JWT we issued, or nothing at all (anonymous). Passwords are checked against
// the database at login; a successful check is remembered for a minute under an HMAC of the
// credentials (a random per-process key), so Basic on every registry request runs no scrypt.

export interface Credentials {
  username: string;
  password: string;
}

export interface AuthServiceOptions {
  config: AuthConfig;
  permissions: readonly PermissionTarget[];
  accounts: Accounts;
  key: SigningKey;
  audit: Audit;
  now: () => number;
  onError: (error: unknown) => void;
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
  readonly authorizer: Authorizer;
  readonly directory: AccountDirectory;
  readonly #accounts: Accounts;
  readonly audit: Audit;
  readonly #now: () => number;
  readonly #throttle: LoginThrottle;
  readonly #hmacKey = randomBytes(32);
  /** HMAC of "user\0password" → the password hash it was verified against, and when. */
  readonly #verified = new LRUCache<string, { hash: string; at: number }>({ max: 10_000 });
  readonly #principals = new Map<string, Principal>();

  constructor(options: AuthServiceOptions) {
    this.config = options.config;
    this.#accounts = options.accounts;
    this.audit = options.audit;
    this.#now = options.now;
    this.authorizer = new Authorizer(options.permissions);
    this.tokens = new TokenService({ key: options.key, service: options.config.service, lifetimeMs: options.config.tokenLifetime, refreshLifetimeMs: options.config.refreshTokenLifetime, now: options.now });
    this.#throttle = new LoginThrottle({ ...options.config.throttle, windowMs: options.config.throttle.window, now: options.now });
    this.directory = new AccountDirectory(options.accounts, {
      now: options.now,
      onError: options.onError,
      onChange: () => {
        this.authorizer.forget();
        this.#principals.clear();
      },
    });
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

  #userPrincipal(name: string): Principal | null {
    const cached = this.#principals.get(`u:${name}`);
    if (cached) return cached;
    const user = this.directory.user(name);
    if (!user) return null;
    const principal: Principal = { kind: 'user', name, groups: user.groups, admin: user.admin };
    this.#principals.set(`u:${name}`, principal);
    return principal;
  }

  #tokenPrincipal(id: string): Principal | null {
    const cached = this.#principals.get(`t:${id}`);
    if (cached) return cached;
    const token = this.directory.usableToken(id);
    const owner = token && this.directory.user(token.owner);
    if (!token || !owner) return null;
    const scope = token.scope.length === 0 ? null : token.scope.map(parseTokenScope);
    const principal: Principal = { kind: 'token', name: owner.name, groups: owner.groups, admin: owner.admin, tokenId: id, scope };
    this.#principals.set(`t:${id}`, principal);
    return principal;
  }

  /** The principal a bearer JWT speaks for now, or null (its user removed, its access token revoked). */
  principalOf(subject: string, tokenId: string | null): Principal | null {
    if (subject === '') return tokenId === null ? anonymous : null;
    if (tokenId === null) return this.#userPrincipal(subject);
    const principal = this.#tokenPrincipal(tokenId);
    if (principal?.kind !== 'token' || principal.name !== subject) return null;
    this.directory.noteUse(tokenId);
    return principal;
  }

  /** An access token sent as a bearer credential. */
  accessTokenPrincipal(text: string): Principal | null {
    const parsed = parseAccessToken(text);
    const token = parsed && this.directory.usableToken(parsed.id);
    if (!parsed || !token || !secretMatches(parsed.secret, token.secretHash)) return null;
    return this.principalOf(token.owner, parsed.id);
  }

  #hmac(credentials: Credentials): string {
    return createHmac('sha256', this.#hmacKey).update(`${credentials.username}\u0000${credentials.password}`).digest('base64');
  }

  /**
   * Checks a user name with a password or access token. `fresh`: read the user from the database
   * (token endpoint logins) rather than from the snapshot (Basic on registry requests).
   */
  async login(credentials: Credentials, from: string, options: { fresh: boolean }): Promise<Principal> {
    const { username, password } = credentials;
    const token = parseAccessToken(password);
    if (!token) {
      const user = this.directory.user(username);
      const mac = this.#hmac(credentials);
      const known = this.#verified.get(mac);
      if (!options.fresh && user && known?.hash === user.passwordHash && this.#now() - known.at < credentialTtlMs) return this.#userPrincipal(username)!;
    }
    try {
      this.#throttle.check(username, from);
    } catch (error) {
      this.audit.record({ who: username, from, action: 'login', result: 'throttled' });
      throw error;
    }
    if (options.fresh) await this.directory.refresh();
    const principal = token ? this.#checkToken(username, password) : await this.#checkPassword(credentials, options.fresh);
    if (!principal) {
      this.#throttle.failed(username, from);
      this.audit.record({ who: username, from, action: 'login', result: 'failed' });
      throw new RegistryError('UNAUTHORIZED', { message: 'invalid user name or password' });
    }
    this.#throttle.succeeded(username);
    this.audit.record({ who: principalKey(principal), from, action: 'login', result: 'ok' });
    return principal;
  }

  #checkToken(username: string, text: string): Principal | null {
    const principal = this.accessTokenPrincipal(text);
    return principal?.kind === 'token' && principal.name === username ? principal : null;
  }

  async #checkPassword(credentials: Credentials, fresh: boolean): Promise<Principal | null> {
    const user = fresh ? await this.#accounts.getUser(credentials.username) : this.directory.user(credentials.username);
    const mac = this.#hmac(credentials);
    const known = this.#verified.get(mac);
    const ok = user !== null && user !== undefined && known?.hash === user.passwordHash && this.#now() - known.at < credentialTtlMs
      ? true
      // Unknown users are checked against a hash no password matches: they take as long as known ones.
      : await verifyPassword(credentials.password, user?.passwordHash ?? unusableHash);
    if (!ok || !user) return null;
    this.#verified.set(mac, { hash: user.passwordHash, at: this.#now() });
    // A user just added by the CLI may not be in the snapshot yet.
    if (!this.directory.user(user.name)) await this.directory.refresh();
    return this.#userPrincipal(user.name);
  }

  /** The refresh token's user (or access token), if still valid: the user exists and kept their password. */
  async refresh(refreshToken: string, from: string): Promise<Principal> {
    const claims = await this.tokens.verifyRefresh(refreshToken);
    await this.directory.refresh();
    const user = claims && (await this.#accounts.getUser(claims.subject));
    const principal = user && user.passwordChangedAt === claims.passwordChangedAt ? this.principalOf(claims.subject, claims.tokenId) : null;
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
    const subject = principal.kind === 'anonymous' ? '' : principal.name;
    const tokenId = principal.kind === 'token' ? principal.tokenId : null;
    const token = await this.tokens.issue(subject, tokenId, grants);
    const answer: TokenAnswer = { token, access_token: token, expires_in: this.tokens.lifetimeSeconds, issued_at: new Date(this.#now()).toISOString() };
    if (options.offline && principal.kind !== 'anonymous') {
      const user = await this.#accounts.getUser(principal.name);
      if (user) answer.refresh_token = await this.tokens.issueRefresh({ subject, tokenId, passwordChangedAt: user.passwordChangedAt });
    }
    return answer;
  }

  async close(): Promise<void> {
    await this.directory.close();
  }
}
