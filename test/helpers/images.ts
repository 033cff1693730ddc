import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';

// Test images made from random bytes: blobs, manifests and indexes, and OCI layouts of them on
// disk for skopeo to copy. Every image is new, so no test can pass on another test's data.

export interface Blob {
  digest: string;
  bytes: Buffer<ArrayBuffer>;
}

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Buffer<ArrayBuffer>;
  digest: string;
  platform: { os: string; architecture: string };
}

export function blob(bytes: Buffer): Blob {
  const copy = Buffer.from(bytes) as Buffer<ArrayBuffer>;
  return { digest: digestOf(copy), bytes: copy };
}

export function descriptorOf(item: Blob, mediaType: string): { mediaType: string; digest: string; size: number } {
  return { mediaType, digest: item.digest, size: item.bytes.length };
}

/** A new image of random layers, or of the given ones (`share`, e.g. a layer another image has too), with `labels` in its config. */
export function makeImage(options: { layers?: number; layerBytes?: number; architecture?: string; share?: Blob[]; labels?: Record<string, string> } = {}): Image {
  const platform = { os: 'linux', architecture: options.architecture ?? 'amd64' };
  const layers = options.share ?? Array.from({ length: options.layers ?? 2 }, () => blob(gzipSync(randomBytes(options.layerBytes ?? 2048))));
  const config = blob(Buffer.from(JSON.stringify({
    ...platform,
    created: new Date().toISOString(),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: { Labels: { ...options.labels, nonce: randomBytes(8).toString('hex') } },
  })));
  const manifest: Buffer<ArrayBuffer> = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(config, 'application/vnd.oci.image.config.v1+json'),
    layers: layers.map((l) => descriptorOf(l, 'application/vnd.oci.image.layer.v1.tar+gzip')),
  }));
  return { config, layers, manifest, digest: digestOf(manifest), platform };
}

export function makeIndex(images: Image[]): Blob {
  return blob(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((image) => ({ ...descriptorOf({ digest: image.digest, bytes: image.manifest }, OCI_MANIFEST), platform: image.platform })),
  })));
}

/** Writes an OCI image layout holding `images` (and `index` over them, if given) under `tag`. */
export async function writeOciLayout(dir: string, tag: string, images: Image[], index?: Blob): Promise<void> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const all = [...images.flatMap((i) => [i.config, ...i.layers, { digest: i.digest, bytes: i.manifest }]), ...(index ? [index] : [])];
  for (const item of all) await writeFile(join(blobsDir, item.digest.slice(7)), item.bytes);
  const top = index
    ? { ...descriptorOf(index, OCI_INDEX) }
    : { ...descriptorOf({ digest: images[0]!.digest, bytes: images[0]!.manifest }, OCI_MANIFEST) };
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
}
