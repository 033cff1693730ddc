import type { PermissionTarget } from '../config/auth.js';
import { antMatch } from '../oci/ant.js';
import { expand, type Action } from './actions.js';
import { principalKey, type Principal } from './principal.js';

// Artifactory-style permission targets. A target covers some repositories and, inside them, the
// image names its include patterns match and its exclude patterns do not; it grants actions to
// users, groups and anonymous callers. What a principal may do is the union over the targets
// that cover the image. Admins may do everything. Authenticated users get at least what
// anonymous callers get. An access token may do what its owner may do now, within its scope.

interface CompiledTarget {
  repositories: ReadonlySet<string> | 'all';
  include: readonly string[];
  exclude: readonly string[];
  users: ReadonlyMap<string, ReadonlySet<Action>>;
  groups: ReadonlyMap<string, ReadonlySet<Action>>;
  anonymous: ReadonlySet<Action>;
}

function compile(target: PermissionTarget): CompiledTarget {
  const grants = (entries: Readonly<Record<string, readonly Action[]>>) => new Map(Object.entries(entries).map(([name, actions]) => [name, expand(actions)]));
  return {
    repositories: target.repositories.includes('*') ? 'all' : new Set(target.repositories),
    include: target.include,
    exclude: target.exclude,
    users: grants(target.users),
    groups: grants(target.groups),
    anonymous: expand(target.anonymous),
  };
}

/** Bounds the decision cache; it is cleared whole when full (entries are cheap to recompute). */
const maxDecisions = 100_000;

export class Authorizer {
  #targets: CompiledTarget[];
  readonly #decisions = new Map<string, boolean>();

  constructor(targets: readonly PermissionTarget[]) {
    this.#targets = targets.map(compile);
  }

  /** Replaces the permission targets (config reload); decisions made under the old ones are dropped. */
  update(targets: readonly PermissionTarget[]): void {
    this.#targets = targets.map(compile);
    this.#decisions.clear();
  }

  /** Users, groups or tokens changed: forget every cached decision. */
  forget(): void {
    this.#decisions.clear();
  }

  /**
   * May `principal` do `action` to image `image` of repository `repoKey`? `through`: the key the
   * request names, when `repoKey` is a member of that (virtual) repository: an access token's scope
   * restricts what is done through the key it names, the user's permissions apply where the content is.
   */
  allows(principal: Principal, repoKey: string, image: string, action: Action, through = repoKey): boolean {
    const key = `${principalKey(principal)}\u0000${repoKey}\u0000${image}\u0000${action}${through === repoKey ? '' : `\u0000${through}`}`;
    let decision = this.#decisions.get(key);
    if (decision === undefined) {
      decision = this.ownerAllows(principal, repoKey, image, action) && this.#withinTokenScope(principal, through, image, action);
      if (this.#decisions.size >= maxDecisions) this.#decisions.clear();
      this.#decisions.set(key, decision);
    }
    return decision;
  }

  /** What the user (for a token: its owner) may do, whatever the token's scope. */
  ownerAllows(principal: Principal, repoKey: string, image: string, action: Action): boolean {
    if (principal.kind !== 'anonymous' && principal.admin) return true;
    return this.#targets.some((target) => this.#covers(target, repoKey) && this.#grants(target, principal).has(action)
      && target.include.some((pattern) => antMatch(pattern, image)) && !target.exclude.some((pattern) => antMatch(pattern, image)));
  }

  /** Whether the principal may read at least some image of the repository (to list it, to show its key). */
  readsSomething(principal: Principal, repoKey: string): boolean {
    if (principal.kind === 'token' && principal.scope && !principal.scope.some((s) => (s.repoKey === '*' || s.repoKey === repoKey) && s.actions.has('read'))) return false;
    if (principal.kind !== 'anonymous' && principal.admin) return true;
    return this.#targets.some((target) => this.#covers(target, repoKey) && this.#grants(target, principal).has('read'));
  }

  /** Whether the principal may read every image of the repository (a mount that names no source). */
  readsEverything(principal: Principal, repoKey: string): boolean {
    if (principal.kind === 'token' && principal.scope && !principal.scope.some((s) => (s.repoKey === '*' || s.repoKey === repoKey) && s.pattern === '**' && s.actions.has('read'))) return false;
    if (principal.kind !== 'anonymous' && principal.admin) return true;
    return this.#targets.some((target) => this.#covers(target, repoKey) && this.#grants(target, principal).has('read')
      && target.include.includes('**') && target.exclude.length === 0);
  }

  #covers(target: CompiledTarget, repoKey: string): boolean {
    return target.repositories === 'all' || target.repositories.has(repoKey);
  }

  #grants(target: CompiledTarget, principal: Principal): ReadonlySet<Action> {
    if (principal.kind === 'anonymous') return target.anonymous;
    const granted = new Set(target.anonymous);
    for (const action of target.users.get(principal.name) ?? []) granted.add(action);
    for (const group of principal.groups) for (const action of target.groups.get(group) ?? []) granted.add(action);
    return granted;
  }

  #withinTokenScope(principal: Principal, repoKey: string, image: string, action: Action): boolean {
    if (principal.kind !== 'token' || principal.scope === null) return true;
    return principal.scope.some((s) => (s.repoKey === '*' || s.repoKey === repoKey) && s.actions.has(action) && antMatch(s.pattern, image));
  }
}
