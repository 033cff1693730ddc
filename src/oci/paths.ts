import { RegistryError } from './errors.js';
import { isDigest } from './digest.js';
import { isValidTag, requireName } from './names.js';

// The endpoints of distribution-spec §"Endpoints", below /v2/. A name may contain slashes, so
// the endpoint is read from the right: "a/manifests/manifests/x" is name "a/manifests", tag "x".

export type Endpoint =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; uuid: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the request was, for messages: its method and its whole path as the client sent it. */
export interface RequestLine {
  method: string;
  path: string;
}

function notFound(request: RequestLine): RegistryError {
  return new RegistryError('NAME_UNKNOWN', {
    message: `no registry endpoint at ${request.path}: after the image name come manifests/<reference>, blobs/<digest>, blobs/uploads/, tags/list or referrers/<digest>`,
    detail: { path: request.path },
  });
}

function requireDigestSegment(value: string): string {
  if (!isDigest(value)) throw new RegistryError('DIGEST_INVALID', { message: `invalid digest ${JSON.stringify(value)}` });
  return value;
}

/**
 * Parses what follows "/v2/" (no query string). Throws NAME_INVALID, DIGEST_INVALID, … A
 * reference that is neither a tag nor a digest names no manifest: 404 MANIFEST_UNKNOWN to reads
 * (as Distribution and the OCI conformance suite have it), 400 MANIFEST_INVALID to a push.
 */
export function parseEndpoint(path: string, request: RequestLine = { method: 'GET', path: `/v2/${path}` }): Endpoint {
  if (path === '') return { kind: 'base' };
  if (path === '_catalog') return { kind: 'catalog' };
  const segments = path.split('/');
  const n = segments.length;
  const last = segments[n - 1]!;
  const nameOf = (count: number) => requireName(segments.slice(0, n - count).join('/'));
  if (n >= 3 && segments[n - 3] === 'blobs' && segments[n - 2] === 'uploads') {
    if (last === '') return { kind: 'uploads', name: nameOf(3) };
    if (!uuidPattern.test(last)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { detail: { uuid: last } });
    return { kind: 'upload', name: nameOf(3), uuid: last };
  }
  if (n < 2) throw notFound(request);
  switch (segments[n - 2]) {
    case 'blobs':
      if (last === 'uploads') return { kind: 'uploads', name: nameOf(2) };
      return { kind: 'blob', name: nameOf(2), digest: requireDigestSegment(last) };
    case 'manifests':
      if (!isValidTag(last) && !isDigest(last)) {
        const code = request.method === 'PUT' ? 'MANIFEST_INVALID' : 'MANIFEST_UNKNOWN';
        throw new RegistryError(code, { message: `invalid reference ${JSON.stringify(last)}: neither a tag nor a digest`, detail: { reference: last } });
      }
      return { kind: 'manifest', name: nameOf(2), reference: last };
    case 'tags':
      if (last === 'list') return { kind: 'tags', name: nameOf(2) };
      break;
    case 'referrers':
      return { kind: 'referrers', name: nameOf(2), digest: requireDigestSegment(last) };
  }
  throw notFound(request);
}
