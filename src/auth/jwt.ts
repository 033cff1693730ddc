import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { SigningKey } from './keys.js';

// Bearer tokens as the Docker token spec describes them: short-lived JWTs carrying issuer,
// audience (the service), subject, expiry, jti and the granted `access`, and `added`: when the
// subject was added as a user, so that no token outlives a removal of its user, whoever takes the
// name next. Refresh tokens (docker login's offline_token) are JWTs of the same key with
// `use: "refresh"`; neither kind is accepted where the other is expected.
//
// Verifying an ES256 signature costs ~0.25 ms, far more than the rest of a manifest GET, so a
// verified token is remembered by its exact text until its expiry (by the injected clock).

export interface Grant {
  type: string;
  name: string;
  actions: string[];
}

/** Whom a token was issued to. */
export interface TokenSubject {
  /** The user name; '' for an anonymous token. */
  subject: string;
  /** The access token the login used, if it was one. */
  tokenId: string | null;
  /**
   * When that user was added (ms since the epoch; 0 for anonymous): a removal of the name at or
   * after it ends the token, even once a new user has the name.
   */
  addedAt: number;
}

export interface VerifiedToken extends TokenSubject {
  /** "type:name:action" for every granted action. */
  grants: ReadonlySet<string>;
  /** Expiry in ms since the epoch. */
  expiresAt: number;
}

export interface RefreshClaims extends TokenSubject {
  /** When the user's password last changed at issue time: a later change voids the refresh token. */
  passwordChangedAt: number;
}

export interface TokenServiceOptions {
  key: SigningKey;
  service: string;
  lifetimeMs: number;
  refreshLifetimeMs: number;
  now: () => number;
}

export const issuer = 'wharf';
const maxCached = 10_000;

export class TokenService {
  readonly #options: TokenServiceOptions;
  readonly #verified = new LRUCache<string, VerifiedToken>({ max: maxCached });

  constructor(options: TokenServiceOptions) {
    this.#options = options;
  }

  get lifetimeSeconds(): number {
    return Math.floor(this.#options.lifetimeMs / 1000);
  }

  #sign(claims: JWTPayload, lifetimeMs: number): Promise<string> {
    const { key, service, now } = this.#options;
    const issuedAt = Math.floor(now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key.kid })
      .setIssuer(issuer)
      .setAudience(service)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + Math.floor(lifetimeMs / 1000))
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  issue(to: TokenSubject, access: Grant[]): Promise<string> {
    return this.#sign({ ...subjectClaims(to), access }, this.#options.lifetimeMs);
  }

  issueRefresh(claims: RefreshClaims): Promise<string> {
    return this.#sign({ ...subjectClaims(claims), use: 'refresh', pwc: claims.passwordChangedAt }, this.#options.refreshLifetimeMs);
  }

  /**
   * Claims of a JWT of ours valid now and issued for at most `lifetimeMs`: a lifetime lowered in the
   * config shortens the tokens issued before, so none outlives the removals kept for it (accounts.ts).
   */
  async #payload(jwt: string, lifetimeMs: number): Promise<JWTPayload | null> {
    const { key, service, now } = this.#options;
    try {
      const { payload } = await jwtVerify(jwt, key.publicKey, {
        algorithms: ['ES256'], issuer, audience: service, currentDate: new Date(now()), requiredClaims: ['exp', 'sub', 'jti'],
      });
      return payload.exp! - (payload.iat ?? 0) <= Math.floor(lifetimeMs / 1000) ? payload : null;
    } catch {
      return null; // bad signature, another key, alg none, expired, wrong audience, malformed: all the same to a caller
    }
  }

  /** An access JWT's claims, or null when it is not one of ours, not valid now, or a refresh token. */
  async verify(jwt: string): Promise<VerifiedToken | null> {
    const now = this.#options.now();
    const cached = this.#verified.get(jwt);
    if (cached) {
      if (cached.expiresAt > now) return cached;
      this.#verified.delete(jwt);
      return null;
    }
    const payload = await this.#payload(jwt, this.#options.lifetimeMs);
    if (!payload || payload.use !== undefined || typeof payload.sub !== 'string' || !Array.isArray(payload.access)) return null;
    const grants = new Set<string>();
    for (const grant of payload.access as Grant[]) {
      if (grant && typeof grant.type === 'string' && typeof grant.name === 'string' && Array.isArray(grant.actions)) {
        for (const action of grant.actions) grants.add(`${grant.type}:${grant.name}:${String(action)}`);
      }
    }
    const verified = { ...subjectOf(payload, payload.sub), grants, expiresAt: payload.exp! * 1000 };
    this.#verified.set(jwt, verified);
    return verified;
  }

  async verifyRefresh(jwt: string): Promise<RefreshClaims | null> {
    const payload = await this.#payload(jwt, this.#options.refreshLifetimeMs);
    if (!payload || payload.use !== 'refresh' || typeof payload.sub !== 'string' || payload.sub === '' || typeof payload.pwc !== 'number') return null;
    return { ...subjectOf(payload, payload.sub), passwordChangedAt: payload.pwc };
  }
}

function subjectClaims(to: TokenSubject): JWTPayload {
  return { sub: to.subject, ...(to.tokenId ? { tid: to.tokenId } : {}), ...(to.subject ? { added: to.addedAt } : {}) };
}

function subjectOf(payload: JWTPayload, sub: string): TokenSubject {
  // Tokens from before the `added` claim: their user was added before they were issued.
  const addedAt = typeof payload.added === 'number' ? payload.added : (payload.iat ?? 0) * 1000;
  return { subject: sub, tokenId: typeof payload.tid === 'string' ? payload.tid : null, addedAt };
}
