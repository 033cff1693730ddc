import { challengeActions, type Action } from '../auth/actions.js';
import { openAccess, type Access } from '../auth/access.js';
import { basicForm } from '../auth/passwords.js';
import type { Sealer } from '../auth/sealer.js';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import { displayName, type QualifiedName, type Route } from '../routing/route.js';
import { challenge } from './challenge.js';
import { sentCredentials } from './credentials.js';

// Per request: who the caller is (from the Authorization header) and whether they may do what a
// route asks. A caller without credentials, or whose token lacks a scope they could get, is
// challenged (401, Docker's token flow); a known caller without the permission is DENIED (403).
// Anonymous callers are always challenged, so a client holding credentials sends them.

export interface GateContext {
  /** null: authentication is off. */
  auth: AuthService | null;
  /** The token endpoint for this route, absolute. */
  realm: string;
  /** Client address (for throttling and the audit trail). */
  address: string;
  /** TLS (here or at a trusted proxy), or loopback all the way from the client: where passwords and access tokens may travel. */
  secure: boolean;
}

export class Gate {
  /** null when the request carried no credentials. */
  readonly access: Access | null;
  readonly #context: GateContext;

  private constructor(access: Access | null, context: GateContext) {
    this.access = access;
    this.#context = context;
  }

  /** Authenticates the request; throws 401 for credentials that are not good, 429 when throttled. */
  static async open(header: string | undefined, context: GateContext): Promise<Gate> {
    const { auth } = context;
    if (!auth) return new Gate(openAccess, context);
    // Basic credentials verified lately, sent again (clients send them on every request): looked up as they are, unparsed.
    const again = context.secure && header?.startsWith('Basic ') ? auth.remembered(header.slice(6)) : null;
    if (again) return new Gate(auth.access(again, null), context);
    const refuse = (message: string) => challenge({ realm: context.realm, service: auth.config.service, error: 'invalid_token', message });
    const sent = sentCredentials(header, auth);
    if (sent.kind === 'none') return new Gate(null, context);
    if (sent.kind === 'malformed') throw refuse(sent.reason);
    if (sent.kind === 'basic') {
      if (!context.secure) throw refuse('passwords and access tokens are accepted over TLS or on loopback only; use docker login, which sends short-lived bearer tokens');
      try {
        // Written otherwise ("basic", base64 without padding): remembered in the form clients use.
        const principal = auth.tokenAsPassword(sent) ?? auth.remembered(basicForm(sent.username, sent.password)) ?? await auth.login(sent, context.address, { fresh: false });
        return new Gate(auth.access(principal, null), context);
      } catch (error) {
        throw error instanceof RegistryError && error.code === 'UNAUTHORIZED' ? refuse(error.message) : error;
      }
    }
    const verified = await auth.tokens.verify(sent.token);
    const principal = verified && auth.principalOf(verified);
    if (!verified || !principal) throw refuse('the bearer token is not valid (expired, not issued here, or its user or access token is gone)');
    return new Gate(auth.access(principal, verified.grants), context);
  }

  /** Seals what a client carries back but may not read (null: access control is off, everyone reads everything). */
  get cursors(): Sealer | null {
    return this.#context.auth?.cursors ?? null;
  }

  get who(): string {
    return this.access?.who ?? '-';
  }

  #challenge(scope: string | undefined, error?: 'insufficient_scope'): RegistryError {
    return challenge({ realm: this.#context.realm, service: this.#context.auth!.config.service, ...(scope ? { scope } : {}), ...(error ? { error } : {}) });
  }

  /** Any caller with credentials, anonymous tokens included (GET /v2/). */
  requireCredentials(): Access {
    if (!this.access) throw this.#challenge(undefined);
    return this.access;
  }

  /**
   * Throws unless the caller may do `action` to `image` of `repoKey`; `route` names the scope as the
   * client sees it. `source`: a mount's, asked for too (pull), as distribution does, so that the
   * token a client gets for the challenge lets the mount happen rather than a whole upload.
   */
  require(route: Route, repoKey: string, image: string, action: Action, source: QualifiedName | null = null): Access {
    const verdict = this.access?.verdict(repoKey, image, action);
    if (verdict === 'granted') return this.access!;
    if (!this.access) throw this.#challenge(scopeOf(route, repoKey, image, action, source));
    // Not a denial: the protocol's way to send the client back for a token with this scope.
    if (verdict === 'outside-token') throw this.#challenge(scopeOf(route, repoKey, image, action, source), 'insufficient_scope');
    return this.deny(route, repoKey, image, action, source);
  }

  /** Refuses what the caller's permissions do not allow: a challenge for anonymous callers (they may log in), else DENIED. */
  deny(route: Route, repoKey: string, image: string, action: Action, source: QualifiedName | null = null): never {
    const access = this.requireCredentials();
    this.audit({ action, target: `${repoKey}/${image}`, result: 'denied' });
    if (access.principal.kind === 'anonymous') throw this.#challenge(scopeOf(route, repoKey, image, action, source));
    throw new RegistryError('DENIED', { message: `${access.who} may not ${action} ${displayName(route, repoKey, image)}`, detail: { action } });
  }

  requireCatalog(): Access {
    if (!this.access) throw this.#challenge('registry:catalog:*');
    if (!this.access.mayListCatalog()) throw this.#challenge('registry:catalog:*', 'insufficient_scope');
    return this.access;
  }

  /** Configuration (metrics, proxy snippets) and administration: admins only, never by a registry bearer JWT (access.ts). */
  requireAdmin(what: string): Access {
    const access = this.requireCredentials();
    if (access.admin) return access;
    this.audit({ action: 'read', target: what, result: 'denied' });
    if (access.principal.kind === 'anonymous') throw this.#challenge(undefined);
    throw new RegistryError('DENIED', { message: `${access.who} may not read ${what}: admins only, with their password or an access token (a registry bearer token carries no administrator rights)` });
  }

  audit(event: { action: string; target: string; result: 'ok' | 'denied' }): void {
    this.#context.auth?.audit.record({ who: this.who, from: this.#context.address, ...event });
  }
}

/** A challenge's scope: the image and action a request needs, as the client names it, and a mount's source (pull). */
function scopeOf(route: Route, repoKey: string, image: string, action: Action, source: QualifiedName | null): string {
  const needed = `repository:${displayName(route, repoKey, image)}:${challengeActions(action)}`;
  return source ? `${needed} repository:${displayName(route, source.repoKey, source.name)}:${challengeActions('read')}` : needed;
}
