import type { AcceptedTypes } from '../oci/accept.js';
import { isDigest, requireDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type DeclaredSize, type Descriptor } from '../oci/manifest.js';
import { schema1Types } from '../oci/mediatypes.js';
import type { BlobReader } from '../cache/small-blobs.js';
import type { LocalRepositoryConfig } from '../config/types.js';
import type { Store } from '../store/index.js';
import type { ManifestRow, Page } from '../store/metadata.js';
import { negotiate } from './negotiate.js';
import type { BlobRead, BlobSource, ByteRange, Listing, Manifest, PutManifestResult, Repository, Uploads } from './repository.js';

function toManifest(row: ManifestRow): Manifest {
  return { digest: row.digest, mediaType: row.media_type, content: row.content, ...(row.pushed_at ? { pushedAt: row.pushed_at } : {}) };
}

function listing<T>(rows: T[], page: Page): Listing<T> {
  return rows.length > page.n ? { items: rows.slice(0, page.n), more: true } : { items: rows, more: false };
}

/** Private images pushed by users and CI: metadata links in SQLite over the shared blob store. */
export class LocalRepository implements Repository {
  readonly kind = 'local';
  readonly key: string;
  readonly uploads: Uploads;
  readonly #config: LocalRepositoryConfig;
  readonly #store: Store;
  readonly #reader: BlobReader;

  constructor(options: { key: string; config: LocalRepositoryConfig; store: Store; reader: BlobReader }) {
    this.key = options.key;
    this.#config = options.config;
    this.#store = options.store;
    this.#reader = options.reader;
    this.uploads = this.#uploads();
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes): Promise<Manifest> {
    const metadata = this.#store.metadata;
    const byDigest = isDigest(reference);
    const row = byDigest ? metadata.manifestByDigest(this.key, name, reference) : metadata.manifestByTag(this.key, name, reference);
    if (!row) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not in ${this.key}`, detail: { name, reference } });
    const manifest = byDigest
      ? toManifest(row)
      : await negotiate(toManifest(row), accepted, async (digest) => {
        const child = metadata.manifestByDigest(this.key, name, digest);
        return child && toManifest(child);
      });
    metadata.notePull(this.key, name, manifest.digest);
    return manifest;
  }

  async putManifest(name: string, reference: string, content: Buffer, contentType: string | undefined): Promise<PutManifestResult> {
    const manifest = parseManifest(content, contentType);
    if (schema1Types.has(manifest.mediaType) && this.#config.blockSchema1) {
      throw new RegistryError('MANIFEST_INVALID', {
        message: `Docker schema1 manifests are blocked in ${this.key} (blockSchema1). Convert the image to schema2 or OCI first, e.g. ` +
          '`skopeo copy --format v2s2 docker://SOURCE docker://DESTINATION`, or rebuild and push it with a current docker/buildx/podman',
        detail: { mediaType: manifest.mediaType },
      });
    }
    const byDigest = isDigest(reference);
    if (byDigest && reference !== manifest.digest) {
      const algorithm = requireDigest(reference).algorithm;
      if (algorithm === 'sha256') {
        throw new RegistryError('DIGEST_INVALID', { message: `manifest has digest ${manifest.digest}, not ${reference}`, detail: { digest: manifest.digest } });
      }
      throw new RegistryError('UNSUPPORTED', { status: 400, message: 'manifests are addressed by sha256 digests', detail: { digest: reference } });
    }
    this.#checkSizes(name, manifest.declared);
    const { missing } = this.#store.metadata.putManifest({ repo: this.key, name, manifest, content, tag: byDigest ? null : reference, requireReferences: true });
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', {
        message: `the manifest references ${missing.length} blob(s) or manifest(s) not in ${this.key}/${name}: ${missing.slice(0, 5).join(', ')}`,
        detail: { missing },
      });
    }
    return { digest: manifest.digest, subject: manifest.subject?.digest ?? null };
  }

  /** A descriptor whose size differs from what it points to would break every pull: refused. */
  #checkSizes(name: string, declared: readonly DeclaredSize[]): void {
    const metadata = this.#store.metadata;
    for (const item of declared) {
      const stored = item.kind === 'blob' ? metadata.blobSize(this.key, name, item.digest) : metadata.manifestByDigest(this.key, name, item.digest)?.content.length ?? null;
      if (stored === null || stored === item.size) continue;
      throw new RegistryError('MANIFEST_INVALID', {
        message: `${item.where} gives size ${item.size} for ${item.digest}, but that ${item.kind} in ${this.key}/${name} is ${stored} bytes`,
        detail: { descriptor: item.where, digest: item.digest, declared: item.size, stored },
      });
    }
  }

  async deleteManifest(name: string, reference: string): Promise<void> {
    const metadata = this.#store.metadata;
    const deleted = isDigest(reference) ? metadata.deleteManifest(this.key, name, reference) : metadata.deleteTag(this.key, name, reference);
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not in ${this.key}`, detail: { name, reference } });
  }

  async statBlob(name: string, digest: string): Promise<number> {
    const size = this.#store.metadata.blobSize(this.key, name, digest);
    if (size === null) throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in ${this.key}/${name}`, detail: { digest } });
    return size;
  }

  async openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null): Promise<BlobRead> {
    const size = await this.statBlob(name, digest);
    const range = pickRange?.(size) ?? null;
    return { size, range, stream: await this.#reader.open(digest, size, range ?? { start: 0, end: size - 1 }) };
  }

  /** Unlinks the blob from the image; the bytes stay until garbage collection finds them unused. */
  async deleteBlob(name: string, digest: string): Promise<void> {
    if (!this.#store.metadata.unlinkBlob(this.key, name, digest)) {
      throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in ${this.key}/${name}`, detail: { digest } });
    }
  }

  async listTags(name: string, page: Page): Promise<Listing<string>> {
    const metadata = this.#store.metadata;
    if (!metadata.hasImage(this.key, name)) throw new RegistryError('NAME_UNKNOWN', { message: `no image ${name} in ${this.key}`, detail: { name } });
    return listing(metadata.listTags(this.key, name, { ...page, n: page.n + 1 }), page);
  }

  async listImages(page: Page): Promise<Listing<string>> {
    return listing(this.#store.metadata.listImages(this.key, { ...page, n: page.n + 1 }), page);
  }

  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    return this.#store.metadata.referrers(this.key, name, digest).map((row) => ({
      mediaType: row.media_type,
      digest: row.digest,
      size: row.size,
      ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
      ...(row.annotations ? { annotations: JSON.parse(row.annotations) as Record<string, string> } : {}),
    }));
  }

  #uploads(): Uploads {
    const { uploads, blobs, metadata } = this.#store;
    const key = this.key;
    const owner = (name: string) => ({ repo: key, name });
    const link = (name: string, written: { digest: string; size: number }) => {
      metadata.linkBlob(key, name, written.digest, written.size);
      return written;
    };
    return {
      start: (name) => uploads.start(owner(name)),
      status: (name, uuid) => uploads.status(owner(name), uuid),
      append: (name, uuid, body, range) => uploads.append(owner(name), uuid, body, range),
      cancel: (name, uuid) => uploads.cancel(owner(name), uuid),
      finish: async (name, uuid, digest) => link(name, await uploads.finish(owner(name), uuid, requireDigest(digest))),
      monolithic: async (name, body, digest) => link(name, await blobs.write(body, requireDigest(digest))),
      mount: async (name: string, digest: string, from: BlobSource | null) => {
        const size = from
          ? await from.repository.statBlob(from.name, digest, from.options).catch(() => null)
          : metadata.blobSizeInRepository(key, digest);
        if (size === null || (await blobs.size(digest)) !== size) return null;
        return link(name, { digest, size });
      },
    };
  }
}
