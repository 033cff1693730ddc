import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, makeImage, makeIndex, type Blob, type Image } from './images.js';
import { pushBlob, pushImage, putManifest } from './registry.js';

// Repository management from a test's side: promotion requests, multi-arch pushes as buildx
// makes them (children by digest, then the index by tag), and signatures that refer to an image.

export async function promote(base: string, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/api/docker/${key}/v2/promote`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', ...headers } });
}

/** Asserts a promotion answered 200 and returns its text. */
export async function promoted(base: string, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<string> {
  const response = await promote(base, key, body, headers);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

export interface MultiArch {
  images: Image[];
  index: Blob;
}

/** Images for linux/amd64, linux/arm64/v8 and an attestation-like unknown/unknown child, pushed by digest, then the index by tag. */
export async function pushMultiArch(base: string, name: string, tag: string, options: { unknownChild?: boolean; headers?: Record<string, string> } = {}): Promise<MultiArch> {
  const headers = options.headers ?? {};
  const amd64 = makeImage({ architecture: 'amd64' });
  const arm64 = makeImage({ architecture: 'arm64' });
  const images = [amd64, arm64];
  if (options.unknownChild) images.push({ ...makeImage(), platform: { os: 'unknown', architecture: 'unknown' } });
  for (const image of images) {
    for (const item of [image.config, ...image.layers]) await pushBlob(base, name, item, headers);
    const put = await putManifest(base, name, image.digest, image.manifest, OCI_MANIFEST, headers);
    assert.equal(put.status, 201, await put.text());
  }
  const index = indexWithVariant(images);
  const put = await putManifest(base, name, tag, index.bytes, OCI_INDEX, headers);
  assert.equal(put.status, 201, await put.text());
  return { images, index };
}

/** An index over the images; arm64 gets variant v8, as Docker Hub's images have it. */
export function indexWithVariant(images: Image[]): Blob {
  const plain = JSON.parse(makeIndex(images).bytes.toString()) as { manifests: { platform: Record<string, string> }[] };
  for (const entry of plain.manifests) if (entry.platform.architecture === 'arm64') entry.platform.variant = 'v8';
  return blob(Buffer.from(JSON.stringify(plain)));
}

/** Pushes a signature-like artifact whose subject is `subject` (by digest, untagged); returns its digest. */
export async function pushSignature(base: string, name: string, subject: Blob, mediaType = OCI_MANIFEST): Promise<string> {
  const empty = blob(Buffer.from('{}'));
  const payload = blob(randomBytes(32));
  for (const item of [empty, payload]) await pushBlob(base, name, item);
  const bytes = blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.signature',
    config: descriptorOf(empty, 'application/vnd.oci.empty.v1+json'),
    layers: [descriptorOf(payload, 'application/octet-stream')],
    subject: descriptorOf(subject, mediaType),
  })));
  const put = await putManifest(base, name, bytes.digest, bytes.bytes);
  assert.equal(put.status, 201, await put.text());
  return bytes.digest;
}

export { pushImage };

/** The digest a tag resolves to (any manifest type accepted), or null. */
export async function tagDigest(base: string, path: string, headers: Record<string, string> = {}): Promise<string | null> {
  const response = await fetch(`${base}/v2/${path}`, { method: 'HEAD', headers: { Accept: [OCI_INDEX, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', '), ...headers } });
  return response.status === 200 ? response.headers.get('docker-content-digest') : null;
}

export async function tagsOf(base: string, path: string, headers: Record<string, string> = {}): Promise<string[]> {
  const response = await fetch(`${base}/v2/${path}/tags/list`, { headers });
  if (response.status !== 200) return [];
  return ((await response.json()) as { tags: string[] }).tags;
}
