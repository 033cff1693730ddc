import { parseAccept } from '../oci/accept.js';
import { isDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { maxManifestBytes } from '../oci/manifest.js';
import { apiVersionHeader } from './env.js';
import { readLimited, requestBody } from './streams.js';
import type { Manifest } from '../repos/repository.js';
import { auditTarget, blobSource, readOptions, urlFor, type Target } from './target.js';
import { refuseWrite } from './writes.js';

// What a manifest GET sends, built once per stored manifest: the hot path only looks it up.
// A string body goes out in the same write as the headers; a Buffer body costs a second iovec,
// measured here as a third of the time of a manifest GET. So a manifest is sent as its UTF-8
// text when that text encodes back to exactly the stored bytes (always, for valid JSON written
// as UTF-8), else as the bytes.
interface Rendered {
  body: string | Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

const rendered = new WeakMap<Buffer, Rendered>();

function render(manifest: Manifest): Rendered {
  let entry = rendered.get(manifest.content);
  if (!entry) {
    const { content } = manifest;
    const text = content.toString('utf8');
    const exact = Buffer.byteLength(text) === content.length && Buffer.from(text).equals(content);
    entry = {
      body: exact ? text : (content as Uint8Array<ArrayBuffer>),
      headers: {
        ...apiVersionHeader,
        'Content-Type': manifest.mediaType,
        'Content-Length': String(content.length),
        'Docker-Content-Digest': manifest.digest,
        ETag: `"${manifest.digest}"`,
      },
    };
    rendered.set(content, entry);
  }
  return entry;
}

export async function getManifest(target: Target, reference: string, head: boolean): Promise<Response> {
  const { c, repository, name } = target;
  const options = readOptions(target);
  const manifest = await repository.getManifest(name, reference, parseAccept(c.req.header('accept')), head ? { ...options, head } : options);
  const { body, headers } = render(manifest);
  if (manifest.cache) c.env.notes.cache = manifest.cache;
  return new Response(head ? null : body, { status: 200, headers: manifest.warning ? { ...headers, Warning: manifest.warning } : headers });
}

/**
 * Where moving a tag would be refused: an overwrite needs what a DELETE needs (Artifactory's
 * Delete/Overwrite), delete on the repository the request names and, through a virtual one, on
 * its deployment repository. Undefined when allowed.
 */
function overwriteRefusedOn({ access, named, repository, name }: Target): string | undefined {
  if (!access.principalMay(named.key, name, 'delete')) return named.key;
  return access.principalMay(repository.key, name, 'delete', named.key) ? undefined : repository.key;
}

export async function putManifest(target: Target, reference: string): Promise<Response> {
  const { c, repository, named, name } = target;
  if (!repository.putManifest) throw refuseWrite(target, 'push manifests to');
  const tooLarge = (bytes: number) => new RegistryError('SIZE_INVALID', { status: 413, message: `manifest is over ${maxManifestBytes} bytes (${bytes} so far)` });
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > maxManifestBytes) throw tooLarge(declared);
  const content = await readLimited(requestBody(c), maxManifestBytes, tooLarge);
  // Checked where the tag is written, so a tag another push creates meanwhile is not moved either.
  const refusedOn = isDigest(reference) ? undefined : overwriteRefusedOn(target);
  // Through a virtual repository, the blobs its HEADs said a member has are linked from there.
  const from = named === repository ? null : blobSource(target.access, named, name);
  const { digest, subject, taken } = await repository.putManifest(name, reference, content, c.req.header('content-type'), { overwrite: refusedOn === undefined, ...(from ? { from } : {}) });
  if (taken) target.gate.deny(target.route, refusedOn!, name, 'delete');
  target.gate.audit({ action: 'push', target: auditTarget(target, reference), result: 'ok' });
  return new Response(null, {
    status: 201,
    headers: {
      ...apiVersionHeader,
      Location: urlFor(target, `manifests/${digest}`),
      'Docker-Content-Digest': digest,
      'Content-Length': '0',
      ...(subject ? { 'OCI-Subject': subject } : {}),
    },
  });
}

export async function deleteManifest(target: Target, reference: string): Promise<Response> {
  const { repository, name } = target;
  if (!repository.deleteManifest) throw refuseWrite(target, 'delete manifests from');
  await repository.deleteManifest(name, reference);
  target.gate.audit({ action: 'delete', target: auditTarget(target, reference), result: 'ok' });
  return new Response(null, { status: 202, headers: { ...apiVersionHeader, 'Content-Length': '0' } });
}
