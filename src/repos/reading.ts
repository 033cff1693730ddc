import type { BlobReader } from '../cache/small-blobs.js';
import type { ByteRange, Page, Store } from '../store/index.js';
import type { ManifestRow } from '../store/metadata/types.js';
import type { BlobRead, Listing, Manifest } from './repository.js';

// What local and remote repositories share when they read from the store.

// Built field by field, never by spreading: objects spread on every pull take a new hidden class
// each time (measured on the manifest GET path), where assignments reuse one.
export function toManifest(row: ManifestRow, cache?: Manifest['cache']): Manifest {
  const manifest: Manifest = { digest: row.digest, mediaType: row.media_type, content: row.content };
  if (cache) manifest.cache = cache;
  return manifest;
}

export function listing<T>(rows: T[], page: Page): Listing<T> {
  return rows.length > page.n ? { items: rows.slice(0, page.n), more: true } : { items: rows, more: false };
}

/**
 * A blob the store holds: a redirect to the object store when the driver offers one (whole
 * blobs: the client sends its Range there), else a stream of the range.
 */
export async function readBlob(store: Store, reader: BlobReader, digest: string, size: number, pickRange?: (size: number) => ByteRange | null): Promise<BlobRead> {
  const range = pickRange?.(size) ?? null;
  const redirect = await store.blobs.redirect?.(digest);
  if (redirect) return { size, redirect };
  return { size, range, stream: await reader.open(digest, size, range ?? { start: 0, end: size - 1 }) };
}
