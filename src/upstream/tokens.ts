import { request, type Dispatcher } from 'undici';
import { RegistryError } from '../oci/errors.js';
import { readBody } from './body.js';
import { shownUrl } from './shown.js';

/** Docker's token spec: expires_in defaults to 60 s when the server does not say. */
const defaultTokenSeconds = 60;
/** Renew a little before expiry, so a token never expires in flight. */
const expiryMarginMs = 5_000;
/** A token answer is a few KiB (Docker Hub's about 2 KiB): more is not read. */
const maxTokenBytes = 1 << 20;

export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scope: string | undefined;
  /** "user:password" for Basic on the token endpoint, or null for anonymous. */
  credentials: string | null;
}

export interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * Where tokens are kept, by (realm, service, scope). A Map is this process's; workers share the
 * primary's (server/shared-state.ts), so N workers do not ask the token endpoint N times.
 */
export interface TokenStore {
  get(key: string): CachedToken | undefined | Promise<CachedToken | undefined>;
  set(key: string, token: CachedToken): void;
  delete(key: string): void;
}

/**
 * Bearer tokens from a registry's token endpoint, cached per (realm, service, scope) until they
 * expire; concurrent requests for the same token share one fetch. Connection and transport
 * errors are thrown as they are (the client maps them, naming its timeouts); a refusal or an
 * answer that is no token is a RegistryError.
 */
export class TokenCache {
  readonly #tokens: TokenStore;
  readonly #now: () => number;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #pending = new Map<string, Promise<string>>();

  /**
   * `now`: the clock of expiry (tests move it instead of waiting). `dispatcher`: the upstream
   * client's, with its timeouts (a realm that never answers must not hold pulls for undici's 300 s).
   */
  constructor(options: { store?: TokenStore; now?: () => number; dispatcher?: Dispatcher } = {}) {
    this.#tokens = options.store ?? new Map();
    this.#now = options.now ?? Date.now;
    this.#dispatcher = options.dispatcher;
  }

  async get(tokenRequest: TokenRequest): Promise<string> {
    const key = `${tokenRequest.realm}\u0000${tokenRequest.service ?? ''}\u0000${tokenRequest.scope ?? ''}`;
    const cached = await this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return cached.token;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#fetch(tokenRequest).then(({ token, expiresAt }) => {
        this.#tokens.set(key, { token, expiresAt });
        return token;
      }).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /** Forgets a token the upstream refused (revoked or expired early). */
  forget(tokenRequest: TokenRequest): void {
    this.#tokens.delete(`${tokenRequest.realm}\u0000${tokenRequest.service ?? ''}\u0000${tokenRequest.scope ?? ''}`);
  }

  async #fetch({ realm, service, scope, credentials }: TokenRequest): Promise<{ token: string; expiresAt: number }> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = credentials ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } : {};
    // No redirects are followed (request() does not): the credentials go to the realm alone.
    const response = await request(url, { method: 'GET', headers, ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}) });
    const endpoint = `the upstream token endpoint ${shownUrl(url)}`;
    const text = (await readBody(response, maxTokenBytes, endpoint)).toString('utf8');
    if (response.statusCode !== 200) {
      throw new RegistryError(response.statusCode === 401 || response.statusCode === 403 ? 'UNAUTHORIZED' : 'UNKNOWN', {
        status: 502,
        message: `${endpoint} answered ${response.statusCode}${credentials ? ' for the configured credentials' : ''}`,
      });
    }
    let body: { token?: string; access_token?: string; expires_in?: number } | null;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RegistryError('UNKNOWN', { status: 502, message: `${endpoint} answered with no JSON` });
    }
    const token = body?.token ?? body?.access_token;
    if (!token) throw new RegistryError('UNKNOWN', { status: 502, message: `${endpoint} returned no token` });
    const seconds = typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : defaultTokenSeconds;
    return { token, expiresAt: this.#now() + seconds * 1000 - expiryMarginMs };
  }
}
