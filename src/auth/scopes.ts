import { RegistryError } from '../oci/errors.js';
import { actionsOfDocker, type Action, type DockerAction } from './actions.js';
import type { TokenScope } from './principal.js';

// Docker token scopes (distribution's docs/spec/auth/scope.md):
//   repository:<name>:<action>[,<action>…]   e.g. repository:docker-local/team/app:pull,push
//   registry:catalog:*
// The name may itself hold colons (a host:port), so type is before the first colon and the
// actions after the last one. A resource class ("repository(plugin)") is accepted and ignored.

export interface ScopeRequest {
  type: string;
  name: string;
  actions: string[];
}

const scopePattern = /^([a-z0-9]+)(?:\([a-z0-9]+\))?:(.+):([a-z*]+(?:,[a-z*]+)*)$/;

export function parseScope(text: string): ScopeRequest {
  const match = scopePattern.exec(text);
  if (!match || text.length > 1024) {
    throw new RegistryError('UNSUPPORTED', { status: 400, message: `invalid scope ${JSON.stringify(text.slice(0, 200))}: expected <type>:<name>:<actions>, e.g. repository:docker-local/team/app:pull`, detail: { scope: text.slice(0, 200) } });
  }
  return { type: match[1]!, name: match[2]!, actions: [...new Set(match[3]!.split(','))] };
}

/** Every scope of a token request: repeated `scope` parameters, each possibly space-separated (OAuth2 form). */
export function parseScopes(values: readonly string[]): ScopeRequest[] {
  return values.flatMap((value) => value.split(' ')).filter((item) => item !== '').slice(0, 100).map(parseScope);
}

const dockerActions = new Set<string>(['pull', 'push', 'delete', '*']);

/**
 * An access token's scope as `wharf token create --scope` takes it: repository:<key>[/<pattern>]:<actions>,
 * where <key> may be * and <pattern> is an Ant pattern over image names (default **).
 */
export function parseTokenScope(text: string): TokenScope {
  const { type, name, actions } = parseScope(text);
  const bad = actions.find((action) => !dockerActions.has(action));
  if (type !== 'repository' || bad !== undefined || !/^(\*|[a-z0-9-]+)(\/[a-z0-9._*?/-]+)?$/.test(name)) {
    throw new RegistryError('UNSUPPORTED', { status: 400, message: `invalid token scope ${JSON.stringify(text)}: expected repository:<key>[/<image pattern>]:<pull,push,delete,*>` });
  }
  const slash = name.indexOf('/');
  return {
    repoKey: slash === -1 ? name : name.slice(0, slash),
    pattern: slash === -1 ? '**' : name.slice(slash + 1),
    actions: new Set<Action>(actions.flatMap((action) => actionsOfDocker[action as DockerAction])),
  };
}
