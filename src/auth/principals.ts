import type { AccountDirectory } from './accounts.js';
import { parseAccessToken, secretMatches } from './access-tokens.js';
import type { TokenSubject } from './jwt.js';
import { anonymous, type Principal } from './principal.js';
import { parseTokenScope } from './scopes.js';

// Principals as the account snapshot has them now, built once per user or access token and kept
// until the snapshot changes (forget()), so the hot path allocates nothing for them.

export class Principals {
  readonly #directory: AccountDirectory;
  readonly #built = new Map<string, Principal>();

  constructor(directory: AccountDirectory) {
    this.#directory = directory;
  }

  forget(): void {
    this.#built.clear();
  }

  user(name: string): Principal | null {
    const cached = this.#built.get(`u:${name}`);
    if (cached) return cached;
    const user = this.#directory.user(name);
    if (!user) return null;
    const principal: Principal = { kind: 'user', name, groups: user.groups, admin: user.admin, addedAt: user.createdAt };
    this.#built.set(`u:${name}`, principal);
    return principal;
  }

  #token(id: string): Principal | null {
    // Asked every time: a token expires by the clock, which changes no snapshot (revocation does).
    const token = this.#directory.usableToken(id);
    if (!token) return null;
    const cached = this.#built.get(`t:${id}`);
    if (cached) return cached;
    const owner = this.#directory.user(token.owner);
    if (!owner) return null;
    const scope = token.scope.length === 0 ? null : token.scope.map(parseTokenScope);
    const principal: Principal = { kind: 'token', name: owner.name, groups: owner.groups, admin: owner.admin, addedAt: owner.createdAt, tokenId: id, scope };
    this.#built.set(`t:${id}`, principal);
    return principal;
  }

  /**
   * Whom a JWT's subject stands for now; null when the user is gone, the access token revoked, or
   * the name was removed since the token's user was added (a new user of that name is someone else).
   */
  of(to: TokenSubject): Principal | null {
    const { subject, tokenId } = to;
    if (subject === '') return tokenId === null ? anonymous : null;
    if (to.addedAt <= (this.#directory.removedAt(subject) ?? -Infinity)) return null;
    return tokenId === null ? this.user(subject) : this.#used(subject, tokenId);
  }

  /** An access token's principal, when the secret matches a usable token. */
  fromAccessToken(text: string): Principal | null {
    const parsed = parseAccessToken(text);
    const token = parsed && this.#directory.usableToken(parsed.id);
    if (!parsed || !token || !secretMatches(parsed.secret, token.secretHash)) return null;
    return this.#used(token.owner, parsed.id);
  }

  #used(owner: string, tokenId: string): Principal | null {
    const principal = this.#token(tokenId);
    if (principal?.kind !== 'token' || principal.name !== owner) return null;
    this.#directory.noteUse(tokenId);
    return principal;
  }
}
