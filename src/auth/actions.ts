import { permissionActions, type Action } from '../config/auth.js';

export type { Action };

// Artifactory's actions nest: whoever may delete/overwrite may also deploy, annotate and read.
// Docker clients speak in token-scope actions instead; this file maps between the two.

/** Every action an action includes (itself and those below it). */
export function implied(action: Action): Action[] {
  return permissionActions.slice(0, permissionActions.indexOf(action) + 1);
}

/** The set of actions a list of granted actions amounts to. */
export function expand(actions: readonly Action[]): Set<Action> {
  return new Set(actions.flatMap(implied));
}

/** Docker token-scope actions (distribution's token spec), as clients request them. */
export type DockerAction = 'pull' | 'push' | 'delete' | '*';

/** The Docker action a request needs in its bearer token to perform `action`. */
export function dockerActionFor(action: Action): DockerAction {
  if (action === 'read') return 'pull';
  if (action === 'annotate' || action === 'deploy') return 'push';
  return action === 'delete' ? 'delete' : '*';
}

/** What a Docker action asks for, in Artifactory's actions: pull → read, push → deploy, delete, * → everything. */
export const actionsOfDocker: Readonly<Record<DockerAction, readonly Action[]>> = {
  pull: ['read'],
  push: ['read', 'annotate', 'deploy'],
  delete: ['delete'],
  '*': permissionActions,
};

/** The scope a challenge names for an action: what a client should ask the token endpoint for. */
export function challengeActions(action: Action): string {
  const docker = dockerActionFor(action);
  return docker === 'push' ? 'pull,push' : docker;
}
