import { RegistryError } from '../oci/errors.js';
import { parseEndpoint, type Endpoint } from '../oci/paths.js';
import type { RepositorySet } from '../repos/set.js';
import type { Route } from '../routing/route.js';
import { deleteBlob, getBlob, headBlob } from './blobs.js';
import { apiVersionHeader, type Ctx } from './env.js';
import { listCatalog, listReferrers, listTags } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import type { Target } from './target.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

type Handler = (target: Target, endpoint: Endpoint) => Promise<Response>;
type Methods = Partial<Record<string, Handler>>;

// Endpoint kind → method → handler (distribution-spec §"Endpoints").
const table: Record<Exclude<Endpoint['kind'], 'base' | 'catalog'>, Methods> = {
  manifest: {
    GET: (t, e) => getManifest(t, ref(e), false),
    HEAD: (t, e) => getManifest(t, ref(e), true),
    PUT: (t, e) => putManifest(t, ref(e)),
    DELETE: (t, e) => deleteManifest(t, ref(e)),
  },
  blob: {
    GET: (t, e) => getBlob(t, digest(e)),
    HEAD: (t, e) => headBlob(t, digest(e)),
    DELETE: (t, e) => deleteBlob(t, digest(e)),
  },
  uploads: { POST: (t) => startUpload(t) },
  upload: {
    GET: (t, e) => uploadStatus(t, uuid(e)),
    PATCH: (t, e) => patchUpload(t, uuid(e)),
    PUT: (t, e) => finishUpload(t, uuid(e)),
    DELETE: (t, e) => cancelUpload(t, uuid(e)),
  },
  tags: { GET: (t) => listTags(t) },
  referrers: { GET: (t, e) => listReferrers(t, digest(e)) },
};

const ref = (e: Endpoint) => (e as { reference: string }).reference;
const digest = (e: Endpoint) => (e as { digest: string }).digest;
const uuid = (e: Endpoint) => (e as { uuid: string }).uuid;

function unsupportedMethod(method: string, allowed: string[]): RegistryError {
  return new RegistryError('UNSUPPORTED', {
    message: `method ${method} is not allowed here (allowed: ${allowed.join(', ')})`,
    headers: { Allow: allowed.join(', ') },
  });
}

function base(): Response {
  return new Response('{}', { status: 200, headers: { ...apiVersionHeader, 'Content-Type': 'application/json; charset=utf-8' } });
}

/** Serves one registry request that routing has mapped to `route`. */
export async function dispatch(c: Ctx, route: Route, repositories: RepositorySet): Promise<Response> {
  const method = c.req.method;
  const endpoint = parseEndpoint(route.endpointPath, { method, path: c.req.path });
  c.set('endpoint', endpoint.kind);
  const repository = route.repoKey === null ? null : repositories.get(route.repoKey);
  if (endpoint.kind === 'base' || endpoint.kind === 'catalog') {
    const allowed = endpoint.kind === 'base' ? ['GET', 'HEAD'] : ['GET'];
    if (!allowed.includes(method)) throw unsupportedMethod(method, allowed);
    return endpoint.kind === 'base' ? base() : listCatalog(c, route, repositories);
  }
  if (!repository) throw new RegistryError('NAME_UNKNOWN', { message: 'no repository key in the path' });
  const methods = table[endpoint.kind];
  const handler = methods[method];
  if (!handler) throw unsupportedMethod(method, Object.keys(methods));
  return handler({ c, route, repository, name: endpoint.name, repositories }, endpoint);
}
