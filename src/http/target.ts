import type { Access } from '../auth/access.js';
import type { BlobSource, ReadOptions, Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { routeUrl, type Route } from '../routing/route.js';
import type { Ctx } from './env.js';
import type { Gate } from './gate.js';

/** One registry request after routing and authorization: which repository and image it is about. */
export interface Target {
  c: Ctx;
  route: Route;
  repository: Repository;
  /** The repository the request names: `repository`, or the virtual repository a write reaches it through. */
  named: Repository;
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
 * permissions on that member (an access token's scope applies to the virtual repository's key).
 */
export function readOptionsFor(access: Access, repository: Repository, name: string, through = repository.key): ReadOptions {
  if (repository.kind === 'remote') return { fetch: access.mayFetch(repository.key, name, through) };
  if (repository.kind !== 'virtual') return {};
  return { member: (member, image) => (access.principalMay(member.key, image, 'read', through) ? readOptionsFor(access, member, image, through) : null) };
}

export function readOptions(target: Target): ReadOptions {
  return readOptionsFor(target.access, target.repository, target.name);
}

/**
 * An image as a source of blobs for the caller (a mount's, or a push's through a virtual
 * repository), read as every read is; null when the caller may not read it.
 */
export function blobSource(access: Access, repository: Repository, name: string): BlobSource | null {
  return access.may(repository.key, name, 'read') ? { repository, name, options: readOptionsFor(access, repository, name) } : null;
}

/** The image (and tag or digest) a request is about, for the audit trail. */
export function auditTarget(target: Target, reference?: string): string {
  const image = `${target.repository.key}/${target.name}`;
  return reference === undefined ? image : `${image}${reference.includes(':') ? '@' : ':'}${reference}`;
}
