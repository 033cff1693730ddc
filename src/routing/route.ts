import { RegistryError } from '../oci/errors.js';
import { isValidRepositoryKey } from '../oci/names.js';

// Which repository a request is for, in this order:
//   port binding    a listener with `repository:` sends everything to it: /v2/<image>/…
//   subdomain       Host <repoKey>.<baseDomain>: /v2/<image>/…
//   /api/docker/<repoKey>/v2/<image>/…       Artifactory-compatible prefix
//   /v2/<repoKey>/<image>/…                  first path segment after /v2/ is the key
//   /v2/, /v2/_catalog                       registry-wide
// The Host header only selects among repositories; it grants nothing by itself: whatever a
// request may do is decided after routing, for the repository it resolved to.

export interface Route {
  /** null for registry-wide endpoints (/v2/, /v2/_catalog). */
  repoKey: string | null;
  /** The rest of the path after the key: what the OCI endpoint grammar parses. */
  endpointPath: string;
  /** The URL prefix that reaches the same repository, for Location and Link headers (absolute behind a reporting proxy). */
  prefix: string;
  /** How clients name images on this route: "docker-local/team/app" on /v2/, "team/app" below a key prefix. */
  namesIncludeKey: boolean;
  /** A query URLs on this route carry to reach the same repository: a mirror's `ns=ghcr.io`. */
  query?: string;
  /** Reached by subdomain: the host name (what a caller is told when no repository has that key). */
  host?: string;
}

export interface QualifiedName {
  repoKey: string;
  name: string;
}

const apiPrefix = '/api/docker/';

/**
 * The path with percent-escapes decoded, for every route that takes names from its path (registry,
 * Artifactory, storage and info APIs). An encoded slash would turn into a separator after the
 * split and so name another image than the one routing, access control and storage agree on
 * (team%2Fapp would act as team/app): refused, as no client sends one.
 */
export function decodePath(path: string): string {
  if (!path.includes('%')) return path;
  if (/%2f/i.test(path)) {
    throw new RegistryError('NAME_INVALID', { message: 'an encoded slash (%2F) is not allowed in the path: write the name with plain slashes, as team/app' });
  }
  try {
    return decodeURIComponent(path);
  } catch {
    throw new RegistryError('NAME_INVALID', { message: 'the request path is not valid percent-encoding' });
  }
}

export interface RouteContext {
  /** The listener's bound repository, if it has one. */
  boundRepository: string | null;
  /** On a mirror listener: upstream registry (containerd's ns) → repository key. */
  mirrors?: ReadonlyMap<string, string> | null;
  baseDomain: string | null;
  /** Configured repository keys (subdomains are checked against them). */
  keys: ReadonlySet<string>;
}

function hostName(host: string | undefined): string | null {
  if (!host) return null;
  return host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
}

const base: Route = { repoKey: null, endpointPath: '', prefix: '/v2/', namesIncludeKey: true };

/**
 * The repository a Host names by subdomain: its key (configured or not: a label that could be a
 * key is routed as one, so whether it exists is said only after authorization, as for a key in a
 * path), `unknown` for a name below baseDomain that no key could name, null when the host is not
 * below baseDomain.
 */
function subdomainKey(host: string | undefined, context: RouteContext): { key: string; host: string } | { unknown: string } | null {
  const domain = context.baseDomain;
  if (!domain) return null;
  const name = hostName(host);
  if (!name || !name.endsWith(`.${domain}`)) return null;
  const key = name.slice(0, -domain.length - 1);
  return context.keys.has(key) || isValidRepositoryKey(key) ? { key, host: name } : { unknown: name };
}

/**
 * A route on which one repository is the whole registry (port binding, subdomain): /v2/…, and
 * its own Artifactory prefix /api/docker/<key>/v2/… (what a reverse proxy may rewrite to).
 */
function boundRoute(repoKey: string, path: string, host?: string): Route | null {
  if (path === '/v2' || path.startsWith('/v2/')) return { repoKey, endpointPath: path.slice(4), prefix: '/v2/', namesIncludeKey: false, ...(host ? { host } : {}) };
  const prefixed = routePath(path);
  if (!prefixed || prefixed.namesIncludeKey) return null;
  if (prefixed.repoKey !== repoKey) {
    // The served key is not named: the caller may not be one who may know it.
    throw new RegistryError('NAME_UNKNOWN', { message: `this host or port serves one repository only, not ${prefixed.repoKey}: name images without a repository key (HOST/team/app)`, detail: { repository: prefixed.repoKey } });
  }
  return host ? { ...prefixed, host } : prefixed;
}

/**
 * A host below baseDomain that names no repository: /v2/ answers as anywhere (clients probe it
 * first and report a 404 there only as "invalid status code"), and the first request that names
 * an image gets the served names.
 */
function unknownSubdomain(name: string, path: string, context: RouteContext): Route {
  if (path === '/v2' || path === '/v2/') return base;
  throw unknownHost(name, [...context.keys], context.baseDomain!);
}

/** NAME_UNKNOWN for a host below baseDomain that names no repository, listing the names `keys` are served on. */
export function unknownHost(host: string, keys: readonly string[], baseDomain: string): RegistryError {
  return new RegistryError('NAME_UNKNOWN', {
    message: `no repository for host ${host}${keys.length ? `; this registry serves ${keys.map((k) => `${k}.${baseDomain}`).join(', ')}` : ''}`,
    detail: { host },
  });
}

/**
 * A mirror listener: containerd names the upstream in ?ns= (docker.io when absent, as Docker's
 * registry-mirrors send nothing). An upstream the listener does not map gets NAME_UNKNOWN: the
 * request never becomes a connection to a host it names.
 */
function mirrorRoute(path: string, mirrors: ReadonlyMap<string, string>, ns: string | null): Route | null {
  const upstream = (ns ?? 'docker.io').toLowerCase();
  const key = mirrors.get(upstream);
  const bound = key ? boundRoute(key, path) : null;
  if (bound) return ns === null ? bound : { ...bound, query: `ns=${encodeURIComponent(upstream)}` };
  if (path === '/v2' || path === '/v2/') return base;
  throw new RegistryError('NAME_UNKNOWN', {
    message: `this mirror serves ${[...mirrors.keys()].join(', ')}; it has nothing for ns=${JSON.stringify(upstream)}`,
    detail: { ns: upstream },
  });
}

/**
 * Maps a request (path without query string, Host, and on a mirror listener the ns query
 * parameter) to a repository and endpoint, or null if not a registry path.
 */
export function route(rawPath: string, host: string | undefined, context: RouteContext, query: { ns?: string | null } = {}): Route | null {
  const path = decodePath(rawPath);
  if (context.boundRepository) return boundRoute(context.boundRepository, path);
  if (context.mirrors) return mirrorRoute(path, context.mirrors, query.ns ?? null);
  const subdomain = subdomainKey(host, context);
  if (subdomain === null) return routePath(path);
  if ('unknown' in subdomain) return unknownSubdomain(subdomain.unknown, path, context);
  return boundRoute(subdomain.key, path, subdomain.host);
}

/**
 * A repository key as a path names it. The configuration admits only DNS labels, so anything else
 * names no repository; refused here, before it could reach a header (a challenge's scope or realm).
 */
export function requireRepositoryKey(key: string): string {
  if (isValidRepositoryKey(key)) return key;
  throw new RegistryError('NAME_INVALID', { message: `invalid repository key ${JSON.stringify(key.slice(0, 100))}: lowercase letters, digits and dashes, like docker-local`, detail: { repository: key.slice(0, 100) } });
}

/** The repository-path methods: /api/docker/<key>/v2/… and /v2/<key>/…. */
function routePath(path: string): Route | null {
  if (path === '/v2' || path === '/v2/') return base;
  if (path.startsWith('/v2/')) {
    const rest = path.slice(4);
    if (rest === '_catalog') return { repoKey: null, endpointPath: rest, prefix: '/v2/', namesIncludeKey: true };
    const slash = rest.indexOf('/');
    const repoKey = requireRepositoryKey(slash === -1 ? rest : rest.slice(0, slash));
    return { repoKey, endpointPath: slash === -1 ? '' : rest.slice(slash + 1), prefix: `/v2/${repoKey}/`, namesIncludeKey: true };
  }
  if (path.startsWith(apiPrefix)) {
    const match = /^([^/]+)\/v2(?:\/(.*))?$/.exec(path.slice(apiPrefix.length));
    if (!match) return null;
    const repoKey = requireRepositoryKey(match[1]!);
    return { repoKey, endpointPath: match[2] ?? '', prefix: `${apiPrefix}${repoKey}/v2/`, namesIncludeKey: false };
  }
  return null;
}

/**
 * A URL on `route` (same access method, same repository) for Location and Link: its prefix, `path`,
 * then the route's own query (a mirror's ns, without which the URL reaches another repository) and `params`.
 */
export function routeUrl(route: Route, path: string, params: Readonly<Record<string, string>> = {}): string {
  const query = [...(route.query ? [route.query] : []), ...Object.entries(params).map(([key, value]) => `${key}=${encodeURIComponent(value)}`)];
  return `${route.prefix}${path}${query.length ? `?${query.join('&')}` : ''}`;
}

/** Resolves a name as a client wrote it on this route (e.g. a mount's `from`) to key and image. */
export function qualifyName(route: Route, fullName: string): QualifiedName | null {
  if (!route.namesIncludeKey) return route.repoKey ? { repoKey: route.repoKey, name: fullName } : null;
  const slash = fullName.indexOf('/');
  return slash > 0 ? { repoKey: fullName.slice(0, slash), name: fullName.slice(slash + 1) } : null;
}

/** The name a client uses for an image on this route. */
export function displayName(route: Route, repoKey: string, name: string): string {
  return route.namesIncludeKey ? `${repoKey}/${name}` : name;
}
