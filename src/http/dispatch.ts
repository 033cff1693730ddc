import type { Action } from '../auth/actions.js';
import { RegistryError } from '../oci/errors.js';
import { parseEndpoint, type Endpoint } from '../oci/paths.js';
import type { Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { unknownHost, type QualifiedName, type Route } from '../routing/route.js';
import { deleteBlob, getBlob, headBlob } from './blobs.js';
import { apiVersionHeader, type Ctx } from './env.js';
import type { Gate } from './gate.js';
import { listCatalog, listReferrers, listTags } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import type { Target } from './target.js';
import { cancelUpload, finishUpload, mountSource, patchUpload, startUpload, uploadStatus } from './uploads.js';

type Handler = (target: Target, endpoint: Endpoint) => Promise<Response>;
/** What a route does, and the action it needs on the image it names. */
interface Entry {
  action: Action;
  handle: Handler;
}
type Methods = Partial<Record<string, Entry>>;

const read = (handle: Handler): Entry => ({ action: 'read', handle });
const deploy = (handle: Handler): Entry => ({ action: 'deploy', handle });
const remove = (handle: Handler): Entry => ({ action: 'delete', handle });

// Endpoint kind → method → action and handler (distribution-spec §"Endpoints"). Handlers check
// what depends on the request itself: a mount's source (read), a tag overwrite (delete too).
const table: Record<Exclude<Endpoint['kind'], 'base' | 'catalog'>, Methods> = {
  manifest: {
    GET: read((t, e) => getManifest(t, ref(e), false)),
    HEAD: read((t, e) => getManifest(t, ref(e), true)),
    PUT: deploy((t, e) => putManifest(t, ref(e))),
    DELETE: remove((t, e) => deleteManifest(t, ref(e))),
  },
  blob: {
    GET: read((t, e) => getBlob(t, digest(e))),
    HEAD: read((t, e) => headBlob(t, digest(e))),
    DELETE: remove((t, e) => deleteBlob(t, digest(e))),
  },
  uploads: { POST: deploy((t) => startUpload(t)) },
  upload: {
    GET: deploy((t, e) => uploadStatus(t, uuid(e))),
    PATCH: deploy((t, e) => patchUpload(t, uuid(e))),
    PUT: deploy((t, e) => finishUpload(t, uuid(e))),
    DELETE: deploy((t, e) => cancelUpload(t, uuid(e))),
  },
  tags: { GET: read((t) => listTags(t)) },
  referrers: { GET: read((t, e) => listReferrers(t, digest(e))) },
};

const ref = (e: Endpoint) => (e as { reference: string }).reference;
const digest = (e: Endpoint) => (e as { digest: string }).digest;
const uuid = (e: Endpoint) => (e as { uuid: string }).uuid;

/** 405 UNSUPPORTED with Allow: the path is served, by other methods. */
export function unsupportedMethod(method: string, allowed: string[]): RegistryError {
  return new RegistryError('UNSUPPORTED', {
    message: `method ${method} is not allowed here (allowed: ${allowed.join(', ')})`,
    headers: { Allow: allowed.join(', ') },
  });
}

function base(): Response {
  return new Response('{}', { status: 200, headers: { ...apiVersionHeader, 'Content-Type': 'application/json; charset=utf-8' } });
}

/**
 * NAME_UNKNOWN naming only the keys the caller may read in; on a subdomain, the hosts they are
 * served on. Said only to callers authorized for what they asked of that key (see dispatch), so
 * that whether a key exists is no answer to anyone else.
 */
export function unknownRepository(key: string, repositories: RepositorySet, gate: Gate, route?: Route): RegistryError {
  const visible = repositories.keys.filter((k) => gate.access?.readsSomething(k));
  if (route?.host) return unknownHost(route.host, visible, route.host.slice(key.length + 1));
  return new RegistryError('NAME_UNKNOWN', {
    message: `no repository ${JSON.stringify(key)}${visible.length ? `; repository keys you may read: ${visible.join(', ')}. Use HOST/<repoKey>/<image>, e.g. HOST/${visible[0]}/team/app` : ''}`,
    detail: { repository: key },
  });
}

/**
 * Where a write lands: the repository itself, or a virtual repository's deployment repository,
 * where the caller needs the same permission (their own: an access token's scope applies to the
 * virtual repository the request names).
 */
function writeTarget(repository: Repository, route: Route, name: string, action: Action, gate: Gate, source: QualifiedName | null): Repository {
  const target = repository.deployment;
  if (!target) return repository;
  if (!gate.access?.principalMay(target.key, name, action, repository.key)) gate.deny(route, target.key, name, action, source);
  return target;
}

/** Serves one registry request that routing has mapped to `route`, once `gate` lets it through. */
export async function dispatch(c: Ctx, route: Route, repositories: RepositorySet, gate: Gate): Promise<Response> {
  const method = c.req.method;
  const endpoint = parseEndpoint(route.endpointPath, { method, path: c.req.path });
  c.env.notes.endpoint = endpoint.kind;
  if (endpoint.kind === 'base' || endpoint.kind === 'catalog') {
    const allowed = endpoint.kind === 'base' ? ['GET', 'HEAD'] : ['GET'];
    if (!allowed.includes(method)) throw unsupportedMethod(method, allowed);
    if (endpoint.kind === 'base') {
      gate.requireCredentials();
      return base();
    }
    const access = gate.requireCatalog();
    // A key the caller may read nothing in lists nothing, whether it exists or not.
    if (route.repoKey !== null && !repositories.find(route.repoKey) && access.readsSomething(route.repoKey)) throw unknownRepository(route.repoKey, repositories, gate, route);
    return listCatalog(c, route, repositories, access, gate.cursors);
  }
  if (route.repoKey === null) throw new RegistryError('NAME_UNKNOWN', { message: 'no repository key in the path' });
  const methods = table[endpoint.kind];
  const entry = methods[method];
  if (!entry) throw unsupportedMethod(method, Object.keys(methods));
  // Authorized before the repository is looked up: whether the key exists is said to no one else.
  const source = endpoint.kind === 'uploads' ? mountSource(c, route) : null;
  const access = gate.require(route, route.repoKey, endpoint.name, entry.action, source);
  const routed = repositories.find(route.repoKey);
  if (!routed) throw unknownRepository(route.repoKey, repositories, gate, route);
  const repository = entry.action === 'read' ? routed : writeTarget(routed, route, endpoint.name, entry.action, gate, source);
  // Awaited rather than returned: an async function that returns a promise adopts it in two more microtasks.
  return await entry.handle({ c, route, repository, named: routed, name: endpoint.name, repositories, access, gate }, endpoint);
}
