import { dockerActionFor, type Action } from './actions.js';
import type { Authorizer } from './permissions.js';
import { anonymous, principalKey, type Principal } from './principal.js';

// What one request may do: its principal's permissions and, for a bearer JWT, the token's
// granted access on top. The JWT names repositories as `<key>/<image>` whatever route it was
// issued on, so routing, authorization and storage see one name.

export type Verdict = 'granted' | 'outside-token' | 'denied';

export interface Access {
  readonly principal: Principal;
  /** For the access log and audit trail: "-" for anonymous. */
  readonly who: string;
  verdict(repoKey: string, image: string, action: Action): Verdict;
  may(repoKey: string, image: string, action: Action): boolean;
  /**
   * The principal's permission, whatever the bearer token's scope: a token's scope says which
   * kind of request it allows (pull, push, delete); details within a request (filling a remote
   * cache, overwriting a tag) are the principal's, as Docker clients never ask for them.
   * `through`: the key the request names when `repoKey` is one of its members (a virtual
   * repository's): an access token's scope applies to that key, the user's permissions to `repoKey`.
   */
  principalMay(repoKey: string, image: string, action: Action, through?: string): boolean;
  /** Whether a read on a remote repository may fetch from the upstream (Artifactory's Deploy/Cache). */
  mayFetch(repoKey: string, image: string, through?: string): boolean;
  mayListCatalog(): boolean;
  readsSomething(repoKey: string): boolean;
  /** Every image of the repository, as a mount without a source needs: never through a bearer JWT, which grants named images. */
  readsEverything(repoKey: string): boolean;
  /**
   * Admins see configuration (repository keys, upstream URLs, proxy snippets, metrics) and run the
   * management API's admin-only endpoints; never through a registry bearer JWT, whose access claim
   * names registry scopes only and which may travel where passwords may not (plain HTTP).
   */
  readonly admin: boolean;
}

/** Authentication is off: every caller may do everything. */
export const openAccess: Access = {
  principal: anonymous,
  who: '-',
  verdict: () => 'granted',
  may: () => true,
  principalMay: () => true,
  mayFetch: () => true,
  mayListCatalog: () => true,
  readsSomething: () => true,
  readsEverything: () => true,
  admin: true,
};

export class RequestAccess implements Access {
  readonly principal: Principal;
  readonly who: string;
  readonly #grants: ReadonlySet<string> | null;
  readonly #authorizer: Authorizer;

  /** `grants`: "type:name:action" from a bearer JWT, or null for credentials that carry none (Basic, access token). */
  constructor(principal: Principal, grants: ReadonlySet<string> | null, authorizer: Authorizer) {
    this.principal = principal;
    this.who = principalKey(principal);
    this.#grants = grants;
    this.#authorizer = authorizer;
  }

  get admin(): boolean {
    if (this.#grants !== null) return false;
    const principal = this.principal;
    return principal.kind === 'user' ? principal.admin : principal.kind === 'token' && principal.admin && principal.scope === null;
  }

  #inToken(repoKey: string, image: string, action: Action): boolean {
    if (this.#grants === null) return true;
    const prefix = `repository:${repoKey}/${image}:`;
    return this.#grants.has(`${prefix}${dockerActionFor(action)}`) || this.#grants.has(`${prefix}*`);
  }

  verdict(repoKey: string, image: string, action: Action): Verdict {
    if (!this.#authorizer.allows(this.principal, repoKey, image, action)) return 'denied';
    return this.#inToken(repoKey, image, action) ? 'granted' : 'outside-token';
  }

  may(repoKey: string, image: string, action: Action): boolean {
    return this.verdict(repoKey, image, action) === 'granted';
  }

  principalMay(repoKey: string, image: string, action: Action, through = repoKey): boolean {
    return this.#authorizer.allows(this.principal, repoKey, image, action, through);
  }

  mayFetch(repoKey: string, image: string, through = repoKey): boolean {
    return this.principalMay(repoKey, image, 'deploy', through);
  }

  mayListCatalog(): boolean {
    return this.#grants === null || this.#grants.has('registry:catalog:*');
  }

  readsSomething(repoKey: string): boolean {
    return this.#authorizer.readsSomething(this.principal, repoKey);
  }

  readsEverything(repoKey: string): boolean {
    return this.#grants === null && this.#authorizer.readsEverything(this.principal, repoKey);
  }
}
