import type { Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import type { Route } from '../routing/route.js';
import type { Ctx } from './env.js';

/** One registry request after routing: which repository and image it is about. */
export interface Target {
  c: Ctx;
  route: Route;
  repository: Repository;
  /** The image inside the repository (team/app). */
  name: string;
  repositories: RepositorySet;
}

/** A URL on the same route as the request (same access method, same repository). */
export function urlFor(target: Target, suffix: string): string {
  return `${target.route.prefix}${target.name}/${suffix}`;
}
