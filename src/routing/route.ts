import { RegistryError } from '../oci/errors.js';

// Which repository a request is for. Issue scope so far: the repository-path methods.
//   /v2/<repoKey>/<image>/…                  first path segment after /v2/ is the key
//   /api/docker/<repoKey>/v2/<image>/…       Artifactory-compatible prefix
//   /v2/, /v2/_catalog                       registry-wide
// Port bindings and subdomains come before these once listeners carry them.

export interface Route {
  /** null for registry-wide endpoints (/v2/, /v2/_catalog). */
  repoKey: string | null;
  /** The rest of the path after the key: what the OCI endpoint grammar parses. */
  endpointPath: string;
  /** The URL prefix that reaches the same repository, for Location and Link headers. */
  prefix: string;
  /** How clients name images on this route: "docker-local/team/app" on /v2/, "team/app" below a key prefix. */
  namesIncludeKey: boolean;
}

export interface QualifiedName {
  repoKey: string;
  name: string;
}

const apiPrefix = '/api/docker/';

function decode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new RegistryError('NAME_INVALID', { message: 'the request path is not valid percent-encoding' });
  }
}

/** Maps a request path (no query string) to a repository and endpoint, or null if not a registry path. */
export function routePath(rawPath: string): Route | null {
  const path = rawPath.includes('%') ? decode(rawPath) : rawPath;
  if (path === '/v2' || path === '/v2/') return { repoKey: null, endpointPath: '', prefix: '/v2/', namesIncludeKey: true };
  if (path.startsWith('/v2/')) {
    const rest = path.slice(4);
    if (rest === '_catalog') return { repoKey: null, endpointPath: rest, prefix: '/v2/', namesIncludeKey: true };
    const slash = rest.indexOf('/');
    const repoKey = slash === -1 ? rest : rest.slice(0, slash);
    return { repoKey, endpointPath: slash === -1 ? '' : rest.slice(slash + 1), prefix: `/v2/${repoKey}/`, namesIncludeKey: true };
  }
  if (path.startsWith(apiPrefix)) {
    const match = /^([^/]+)\/v2(?:\/(.*))?$/.exec(path.slice(apiPrefix.length));
    if (!match) return null;
    const repoKey = match[1]!;
    return { repoKey, endpointPath: match[2] ?? '', prefix: `${apiPrefix}${repoKey}/v2/`, namesIncludeKey: false };
  }
  return null;
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
