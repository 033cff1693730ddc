import { isValidName } from '../oci/names.js';
import type { Action } from './actions.js';
import type { Grant } from './jwt.js';
import type { Authorizer } from './permissions.js';
import type { Principal } from './principal.js';
import type { ScopeRequest } from './scopes.js';

// The token endpoint's answer to requested scopes: each requested action that the principal may
// do now, and nothing else (asking for more is no error; the token just does not carry it).
// Unknown resource types and actions are left out.

/** A scope's name as routing maps it: the repository and the image inside it. */
export interface ScopeTarget {
  repoKey: string;
  image: string;
}

const required: Record<string, Action> = { pull: 'read', push: 'deploy', delete: 'delete' };

function repositoryActions(authorizer: Authorizer, principal: Principal, target: ScopeTarget, requested: readonly string[]): string[] {
  const may = (action: Action) => authorizer.allows(principal, target.repoKey, target.image, action);
  const granted = new Set<string>();
  for (const action of requested) {
    if (action === '*') {
      // Everything, or the part of it that is granted.
      if (may('manage')) granted.add('*');
      else for (const [docker, needs] of Object.entries(required)) if (may(needs)) granted.add(docker);
    } else if (required[action] && may(required[action])) {
      granted.add(action);
    }
  }
  return [...granted];
}

export function grantScopes(authorizer: Authorizer, principal: Principal, scopes: readonly ScopeRequest[], resolve: (name: string) => ScopeTarget | null): Grant[] {
  const grants = new Map<string, Set<string>>();
  const add = (type: string, name: string, actions: string[]) => {
    if (actions.length === 0) return;
    const key = `${type}:${name}`;
    const set = grants.get(key) ?? new Set<string>();
    actions.forEach((action) => set.add(action));
    grants.set(key, set);
  };
  for (const scope of scopes) {
    if (scope.type === 'registry' && scope.name === 'catalog' && scope.actions.includes('*')) add('registry', 'catalog', ['*']);
    if (scope.type !== 'repository') continue;
    const target = resolve(scope.name);
    if (!target || !isValidName(target.image)) continue;
    add('repository', `${target.repoKey}/${target.image}`, repositoryActions(authorizer, principal, target, scope.actions));
  }
  return [...grants].map(([key, actions]) => {
    const colon = key.indexOf(':');
    return { type: key.slice(0, colon), name: key.slice(colon + 1), actions: [...actions].sort() };
  });
}
