import { RegistryError } from '../oci/errors.js';
import { isDigest, requireDigest } from '../oci/digest.js';
import { isValidName, isValidRepositoryKey } from '../oci/names.js';
import { qualifyName, type QualifiedName, type Route } from '../routing/route.js';
import type { Uploads, UploadState, WrittenBlob } from '../repos/repository.js';
import { apiVersionHeader, type Ctx } from './env.js';
import { parseContentRange, uploadRangeHeader } from './ranges.js';
import { requestBody } from './streams.js';
import { blobSource, urlFor, type Target } from './target.js';
import { refuseWrite } from './writes.js';

// Blob uploads, distribution-spec §"Pushing blobs": monolithic POST ?digest=, POST then PUT,
// chunked POST + PATCH* + PUT, status GET, cancel DELETE and cross-repository mount.

function uploadsOf(target: Target): Uploads {
  if (!target.repository.uploads) throw refuseWrite(target, 'push blobs to');
  return target.repository.uploads;
}

/** Where an upload stands: sent with every answer about it, a refused chunk's included. */
function progress(target: Target, state: UploadState): Record<string, string> {
  return { Location: urlFor(target, `blobs/uploads/${state.uuid}`), Range: uploadRangeHeader(state.size), 'Docker-Upload-UUID': state.uuid };
}

function inProgress(target: Target, state: UploadState, status: 202 | 204): Response {
  return new Response(null, { status, headers: { ...apiVersionHeader, ...progress(target, state), 'Content-Length': '0' } });
}

/**
 * Appends the request's body as the next chunk. A chunk refused whole (416 out of order or while
 * another chunk of the upload is still arriving, 400 SIZE_INVALID when not the length its
 * Content-Range says; the store names the upload's size) is
 * answered with the upload's Location and Range, as the spec shows it for the 416, so that the
 * client resumes from there without asking.
 */
async function appendChunk(target: Target, uploads: Uploads, uuid: string): Promise<UploadState> {
  try {
    return await uploads.append(target.name, uuid, requestBody(target.c), parseContentRange(target.c.req.header('content-range')));
  } catch (error) {
    const size = error instanceof RegistryError ? (error.detail as { size?: unknown } | null)?.size : undefined;
    if (typeof size !== 'number') throw error;
    const refused = error as RegistryError;
    throw new RegistryError(refused.code, { status: refused.status, message: refused.message, detail: refused.detail, headers: progress(target, { uuid, size }) });
  }
}

function created(target: Target, blob: WrittenBlob): Response {
  return new Response(null, {
    status: 201,
    headers: {
      ...apiVersionHeader,
      Location: urlFor(target, `blobs/${blob.digest}`),
      'Docker-Content-Digest': blob.digest,
      'Content-Length': '0',
    },
  });
}

/** True when the request carries a body (a length above zero, or chunked encoding). */
function hasBody(target: Target): boolean {
  const { c } = target;
  const length = c.req.header('content-length');
  return length !== undefined ? Number(length) > 0 : c.req.header('transfer-encoding') !== undefined;
}

/** The source a mount names (`?mount=…&from=…`), read as routing reads names on `route`; null without one, or for no valid name. */
export function mountSource(c: Ctx, route: Route): QualifiedName | null {
  const { mount, from } = c.req.query();
  const qualified = mount !== undefined && from ? qualifyName(route, from) : null;
  return qualified && isValidRepositoryKey(qualified.repoKey) && isValidName(qualified.name) ? qualified : null;
}

async function mount(target: Target, uploads: Uploads, digest: string, from: string | undefined): Promise<Response | null> {
  if (!isDigest(digest)) return null;
  let source = null;
  if (from) {
    const qualified = mountSource(target.c, target.route);
    const repository = qualified && target.repositories.find(qualified.repoKey);
    // Read as every read is: a virtual source through the members the caller may read, a remote
    // one fetching only for callers who may fill its cache. A source the caller may not read is
    // no source: a plain upload follows, revealing nothing.
    source = repository ? blobSource(target.access, repository, qualified.name) : null;
    if (!source) return null;
  } else if (!target.access.readsEverything(target.repository.key)) {
    return null; // without a source, any image of the repository could be one
  }
  const blob = await uploads.mount(target.name, digest, source);
  return blob && created(target, blob);
}

export async function startUpload(target: Target): Promise<Response> {
  const uploads = uploadsOf(target);
  const query = target.c.req.query();
  if (query.mount !== undefined) {
    // Not mountable: fall back to a plain upload session, as the spec says.
    const mounted = await mount(target, uploads, query.mount, query.from);
    if (mounted) return mounted;
  }
  if (query.digest !== undefined) {
    requireDigest(query.digest);
    return created(target, await uploads.monolithic(target.name, requestBody(target.c), query.digest));
  }
  return inProgress(target, await uploads.start(target.name), 202);
}

export async function uploadStatus(target: Target, uuid: string): Promise<Response> {
  return inProgress(target, await uploadsOf(target).status(target.name, uuid), 204);
}

export async function patchUpload(target: Target, uuid: string): Promise<Response> {
  return inProgress(target, await appendChunk(target, uploadsOf(target), uuid), 202);
}

export async function finishUpload(target: Target, uuid: string): Promise<Response> {
  const uploads = uploadsOf(target);
  const digest = target.c.req.query('digest');
  if (!digest) throw new RegistryError('DIGEST_INVALID', { message: 'PUT of an upload needs ?digest=<digest>' });
  requireDigest(digest);
  if (hasBody(target)) await appendChunk(target, uploads, uuid);
  return created(target, await uploads.finish(target.name, uuid, digest));
}

export async function cancelUpload(target: Target, uuid: string): Promise<Response> {
  await uploadsOf(target).cancel(target.name, uuid);
  return new Response(null, { status: 204, headers: { ...apiVersionHeader, 'Content-Length': '0' } });
}
