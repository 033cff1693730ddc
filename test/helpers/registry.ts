import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DOCKER_FOREIGN_LAYER, DOCKER_MANIFEST, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, type Blob, type Image } from './images.js';

// A tiny registry client over fetch, for end-to-end tests: just enough to push test images.

export async function pushBlob(base: string, name: string, item: Blob, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes, headers });
  assert.equal(response.status, 201, `monolithic upload of ${item.digest}: ${await response.clone().text()}`);
  return response;
}

export async function putManifest(base: string, name: string, reference: string, bytes: Buffer<ArrayBuffer>, mediaType = OCI_MANIFEST, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v2/${name}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': mediaType, ...headers } });
}

/** Pushes an image's blobs and its manifest under `tag`. */
export async function pushImage(base: string, name: string, image: Image, tag: string, headers: Record<string, string> = {}): Promise<void> {
  for (const item of [image.config, ...image.layers]) await pushBlob(base, name, item, headers);
  const response = await putManifest(base, name, tag, image.manifest, OCI_MANIFEST, headers);
  assert.equal(response.status, 201, await response.text());
}

export async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { errors: { code: string }[] };
  return body.errors[0]!.code;
}

/** POST then PUT with the body: the upload every registry supports (Distribution ignores POST ?digest=). */
export async function seedBlob(base: string, name: string, item: Blob, headers: Record<string, string> = {}): Promise<void> {
  const started = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers });
  assert.equal(started.status, 202, await started.clone().text());
  const location = new URL(started.headers.get('location')!, base);
  location.searchParams.set('digest', item.digest);
  const put = await fetch(location, { method: 'PUT', body: item.bytes, headers: { ...headers, 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 201, await put.text());
}

/** Seeds an image into any registry (Distribution included) under `tag`. */
export async function seedImage(base: string, name: string, image: Image, tag: string, headers: Record<string, string> = {}): Promise<void> {
  for (const item of [image.config, ...image.layers]) await seedBlob(base, name, item, headers);
  const response = await fetch(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { ...headers, 'Content-Type': OCI_MANIFEST } });
  assert.equal(response.status, 201, await response.text());
}

/** Pushes a Docker image (tag 1) whose one layer is foreign, `bytes` long and listed at `url` only (it is pushed nowhere); returns the layer. */
export async function pushForeignImage(base: string, name: string, url: string, bytes: number): Promise<Blob> {
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'windows', nonce: randomBytes(4).toString('hex') })));
  const layer = blob(randomBytes(bytes));
  await pushBlob(base, name, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST,
    config: descriptorOf(config, 'application/vnd.docker.container.image.v1+json'),
    layers: [{ ...descriptorOf(layer, DOCKER_FOREIGN_LAYER), urls: [url] }],
  }));
  const response = await putManifest(base, name, '1', manifest, DOCKER_MANIFEST);
  assert.equal(response.status, 201, await response.text());
  return layer;
}

/**
 * A PATCH of `bytes` to an upload at `url` whose body stops after `holdAfter` bytes (1 MiB pieces)
 * until `resume()`. `reading` resolves once that much was taken: more than loopback buffers hold,
 * so the server is reading the body, holding the upload session. `response` is the PATCH's answer.
 */
export function heldChunk(url: string, bytes: Buffer, holdAfter = 20 << 20): { reading: Promise<void>; resume: () => void; response: Promise<Response> } {
  const mib = 1 << 20;
  let resume!: () => void;
  const resumed = new Promise<void>((resolve) => { resume = resolve; });
  let reached!: () => void;
  const reading = new Promise<void>((resolve) => { reached = resolve; });
  let sent = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (sent === holdAfter) { reached(); await resumed; }
      if (sent === bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(sent, sent + mib));
      sent += mib;
    },
  }, { highWaterMark: 0 });
  const response = fetch(url, { method: 'PATCH', body, duplex: 'half' } as RequestInit);
  response.catch(() => undefined);
  return { reading, resume, response };
}
