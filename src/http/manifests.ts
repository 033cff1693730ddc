import { parseAccept } from '../oci/accept.js';
import { RegistryError } from '../oci/errors.js';
import { maxManifestBytes } from '../oci/manifest.js';
import { apiVersionHeader } from './env.js';
import { readLimited, requestBody } from './streams.js';
import { urlFor, type Target } from './target.js';
import { refuseWrite } from './writes.js';

// A string body goes out in the same write as the headers; a Buffer body costs a second iovec,
// measured here as a third of the time of a manifest GET. So a manifest is sent as its UTF-8
// text when that text encodes back to exactly the stored bytes (always, for valid JSON written
// as UTF-8), else as the bytes. Computed once per stored buffer.
const texts = new WeakMap<Buffer, string | null>();

function bodyOf(content: Buffer): string | Uint8Array<ArrayBuffer> {
  let text = texts.get(content);
  if (text === undefined) {
    const decoded = content.toString('utf8');
    text = Buffer.byteLength(decoded) === content.length && Buffer.from(decoded).equals(content) ? decoded : null;
    texts.set(content, text);
  }
  return text ?? (content as Uint8Array<ArrayBuffer>);
}

export async function getManifest(target: Target, reference: string, head: boolean): Promise<Response> {
  const { c, repository, name } = target;
  const manifest = await repository.getManifest(name, reference, parseAccept(c.req.header('accept')));
  return new Response(head ? null : bodyOf(manifest.content), {
    status: 200,
    headers: {
      ...apiVersionHeader,
      'Content-Type': manifest.mediaType,
      'Content-Length': String(manifest.content.length),
      'Docker-Content-Digest': manifest.digest,
      ETag: `"${manifest.digest}"`,
    },
  });
}

export async function putManifest(target: Target, reference: string): Promise<Response> {
  const { c, repository, name } = target;
  if (!repository.putManifest) throw refuseWrite(repository, 'push manifests to');
  const tooLarge = (bytes: number) => new RegistryError('SIZE_INVALID', { status: 413, message: `manifest is over ${maxManifestBytes} bytes (${bytes} so far)` });
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > maxManifestBytes) throw tooLarge(declared);
  const content = await readLimited(requestBody(c), maxManifestBytes, tooLarge);
  const { digest, subject } = await repository.putManifest(name, reference, content, c.req.header('content-type'));
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
  if (!repository.deleteManifest) throw refuseWrite(repository, 'delete manifests from');
  await repository.deleteManifest(name, reference);
  return new Response(null, { status: 202, headers: { ...apiVersionHeader, 'Content-Length': '0' } });
}
