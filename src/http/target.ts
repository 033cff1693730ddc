import type { Access } from '../auth/access.js';
import type { ReadOptions, Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { routeUrl, type Route } from '../routing/route.js';
import type { Ctx } from './env.js';
import type { Gate } from './gate.js';

/** One registry request after routing and authorization: which repository and image it is about. */
export interface Target {
  c: Ctx;
  route: Route;
  repository: Repository;
  /** The image inside the repository (team/app). */
  name: string;
  repositories: RepositorySet;
  /** What the caller may do (the route's own action is already checked). */
  access: Access;
  /** For checks that depend on the request (a tag overwrite) and the audit trail. */
  gate: Gate;
}

/** A URL on the same route as the request (same access method, same repository), for the image's `suffix`. */
export function urlFor(target: Target, suffix: string): string {
  return routeUrl(target.route, `${target.name}/${suffix}`);
}

/**
 * How a caller may read an image of a repository: a remote repository fetches from its upstream
 * only for callers with deploy there; a virtual repository reads each member with the caller's
 * permissions on that member.
 */
export function readOptionsFor(access: Access, repository: Repository, name: string): ReadOptions {
  if (repository.kind === 'remote') return { fetch: access.mayFetch(repository.key, name) };
  if (repository.kind !== 'virtual') return {};
  return { member: (member, image) => (access.principalMay(member.key, image, 'read') ? readOptionsFor(access, member, image) : null) };
}

export function readOptions(target: Target): ReadOptions {
  return readOptionsFor(target.access, target.repository, target.name);
}

/** The image (and tag or digest) a request is about, for the audit trail. */
export function auditTarget(target: Target, reference?: string): string {
  const image = `${target.repository.key}/${target.name}`;
  return reference === undefined ? image : `${image}${reference.includes(':') ? '@' : ':'}${reference}`;
}
