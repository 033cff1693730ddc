import { summarizeImage } from '../oci/image-config.js';
import { isValidTag } from '../oci/names.js';
import type { Descriptor, ParsedManifest } from '../oci/manifest.js';
import type { Store } from '../store/index.js';
import type { ManifestInfo, PlatformTag } from '../store/metadata/types.js';

// What management stores beside a manifest: the image info from its config (read once, through
// the blob driver, only when small: configs are a few KiB, layers are never read), and the
// platform tags of an index.

/** Configs larger than this are not read (no image would have one; an artifact might). */
const maxConfigBytes = 1 << 20;

async function readSmall(store: Store, digest: string): Promise<Buffer | null> {
  const stored = await store.blobs.stat(digest);
  if (!stored || stored.size > maxConfigBytes) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of await store.blobs.read(digest)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The info of an image manifest (null for indexes and schema1), its config read from the store. */
export async function extractInfo(store: Store, manifest: ParsedManifest, content: Uint8Array): Promise<ManifestInfo | null> {
  if (manifest.kind !== 'image') return null;
  const configDigest = manifest.declared.find((item) => item.where === 'config')?.digest;
  const config = configDigest ? await readSmall(store, configDigest).catch(() => null) : null;
  const summary = summarizeImage(content, config);
  return { ...summary, details: JSON.stringify(summary.details) };
}

/** `<tag>-<os>-<arch>[-<variant>]`, Artifactory's platform tag, or null when it is not a valid tag. */
export function platformTagName(tag: string, platform: Descriptor['platform']): string | null {
  if (!platform?.os || !platform.architecture || platform.os === 'unknown' || platform.architecture === 'unknown') return null;
  const name = [tag, platform.os, platform.architecture, ...(platform.variant ? [platform.variant] : [])].join('-');
  return isValidTag(name) ? name : null;
}

/** The platform tags of an index's children (attestations and unnamed platforms have none; the first child of a platform wins). */
export function platformTagsOf(tag: string, children: readonly Descriptor[]): PlatformTag[] {
  const tags = new Map<string, string>();
  for (const child of children) {
    const name = platformTagName(tag, child.platform);
    if (name && !tags.has(name)) tags.set(name, child.digest);
  }
  return [...tags].map(([name, digest]) => ({ tag: name, digest }));
}
