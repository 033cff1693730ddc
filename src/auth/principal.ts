import type { Action } from './actions.js';

/** Who a request is: an anonymous caller, a user (with groups), or an access token of a user. */
export type Principal =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'user'; readonly name: string; readonly groups: readonly string[]; readonly admin: boolean; readonly addedAt: number }
  | {
    readonly kind: 'token';
    /** The owner's name, groups and admin flag, as they are now, and when the owner was added (tokens carry it). */
    readonly name: string;
    readonly groups: readonly string[];
    readonly admin: boolean;
    readonly addedAt: number;
    readonly tokenId: string;
    /** What the token is limited to; null: everything its owner may do. */
    readonly scope: readonly TokenScope[] | null;
  };

/** One entry of an access token's scope: repository key (or *), Ant pattern over image names, actions. */
export interface TokenScope {
  readonly repoKey: string;
  readonly pattern: string;
  readonly actions: ReadonlySet<Action>;
}

export const anonymous: Principal = Object.freeze({ kind: 'anonymous' });

/** A short stable key for caches and logs: "-" for anonymous, the user name, or "name/token:id". */
export function principalKey(principal: Principal): string {
  if (principal.kind === 'anonymous') return '-';
  return principal.kind === 'user' ? principal.name : `${principal.name}/token:${principal.tokenId}`;
}
