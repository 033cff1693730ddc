import { accepts, type AcceptedTypes } from '../oci/accept.js';
import { isDigest, parseDigest, requireDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type DeclaredSize, type Descriptor } from '../oci/manifest.js';
import { schema1Types } from '../oci/mediatypes.js';
import type { BlobReader } from '../cache/small-blobs.js';
import type { LocalRepositoryConfig } from '../config/types.js';
import type { ByteRange, ImageRef, Page, Store } from '../store/index.js';
import { extractInfo, platformTagsOf } from './image-info.js';
import { negotiate } from './negotiate.js';
import { toManifest, readBlob, listing } from './reading.js';
import type { BlobRead, BlobSource, Listing, Manifest, PutManifestOptions, PutManifestResult, ReadOptions, Repository, TagsDropped, Uploads } from './repository.js';

/**
 * Whether the store holds a blob `from` lets the caller read, once read through it: a remote
 * source that has not cached it fetches it as for a pull (verified, then committed) and no byte
 * of it passes through here.
 */
async function stored(from: BlobSource, digest: string): Promise<boolean> {
  try {
    const read = await from.repository.openBlob(from.name, digest, undefined, from.options);
    if (!('stream' in read)) return true; // a redirect to the object store, which holds it
    read.stream.destroy(); // a fill goes on without its readers
    await read.stored?.();
    return true;
  } catch {
    return false;
  }
}

/** Private images pushed by users and CI: metadata links over the shared blob store. */
export class LocalRepository implements Repository {
  readonly kind = 'local';
  readonly key: string;
  readonly uploads: Uploads;
  readonly #config: LocalRepositoryConfig;
  readonly #store: Store;
  readonly #reader: BlobReader;
  readonly #onTagsDropped: TagsDropped;

  constructor(options: { key: string; config: LocalRepositoryConfig; store: Store; reader: BlobReader; onTagsDropped?: TagsDropped }) {
    this.key = options.key;
    this.#config = options.config;
    this.#store = options.store;
    this.#reader = options.reader;
    this.#onTagsDropped = options.onTagsDropped ?? (() => undefined);
    this.uploads = this.#uploads();
  }

  #image(name: string) {
    return { repo: this.key, name };
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes, options: ReadOptions = {}): Promise<Manifest> {
    const image = this.#image(name);
    const manifest = isDigest(reference) ? await this.#byDigest(image, reference) : await this.#byTag(image, reference, accepted);
    if (!manifest) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not in ${this.key}`, detail: { name, reference } });
    this.#store.metadata.pulls.note('manifest', image, manifest.digest, { download: !options.head });
    return manifest;
  }

  async #byDigest(image: ImageRef, digest: string): Promise<Manifest | undefined> {
    const row = await this.#store.metadata.manifests.inImage(image, digest);
    return row && toManifest(row);
  }

  /** The tagged manifest, or the child of it the client accepts. */
  async #byTag(image: ImageRef, tag: string, accepted: AcceptedTypes): Promise<Manifest | undefined> {
    const found = await this.#store.metadata.tags.get(image, tag);
    const row = found && await this.#store.metadata.manifests.content(found.digest);
    if (!row) return undefined;
    const stored = toManifest(row);
    stored.pushedAt = found.pushed_at;
    // Most pulls accept what is stored: no negotiation (and no promise) for them.
    return accepts(accepted, stored.mediaType) ? stored : negotiate(stored, accepted, (child) => this.#byDigest(image, child));
  }

  async putManifest(name: string, reference: string, content: Buffer, contentType: string | undefined, options: PutManifestOptions = {}): Promise<PutManifestResult> {
    // By a digest, the manifest is addressed by that digest's algorithm (sha512 too, as blobs are).
    const byDigest = parseDigest(reference);
    const manifest = parseManifest(content, contentType, byDigest?.algorithm, true);
    if (schema1Types.has(manifest.mediaType) && this.#config.blockSchema1) {
      throw new RegistryError('MANIFEST_INVALID', {
        message: `Docker schema1 manifests are blocked in ${this.key} (blockSchema1). Convert the image to schema2 or OCI first, e.g. ` +
          '`skopeo copy --format v2s2 docker://SOURCE docker://DESTINATION`, or rebuild and push it with a current docker/buildx/podman',
        detail: { mediaType: manifest.mediaType },
      });
    }
    if (byDigest && reference !== manifest.digest) {
      throw new RegistryError('DIGEST_INVALID', { message: `manifest has digest ${manifest.digest}, not ${reference}`, detail: { digest: manifest.digest } });
    }
    if (options.from) await this.#linkMissing(name, manifest.blobs, options.from);
    await this.#checkSizes(name, manifest.declared);
    const tag = byDigest ? null : reference;
    const rules = { platformTags: tag && this.#config.platformTags ? platformTagsOf(tag, manifest.children) : [], maxUniqueTags: this.#config.maxUniqueTags };
    const info = await extractInfo(this.#store, manifest, content);
    const { missing, dropped, taken } = await this.#store.lifecycle.pushManifest({ ...this.#image(name), manifest, content, tag, now: this.#store.now(), rules, info, overwrite: options.overwrite ?? true });
    if (taken) return { digest: manifest.digest, subject: null, taken };
    if (dropped.length > 0) this.#onTagsDropped({ repository: this.key, image: name, tags: dropped, limit: this.#config.maxUniqueTags });
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', {
        message: `the manifest references ${missing.length} blob(s) or manifest(s) not in ${this.key}/${name}: ${missing.slice(0, 5).join(', ')}`,
        detail: { missing },
      });
    }
    return { digest: manifest.digest, subject: manifest.subject?.digest ?? null };
  }

  /** Links the blobs the image lacks from `from`, as mounts; what cannot be linked stays missing (MANIFEST_BLOB_UNKNOWN). */
  async #linkMissing(name: string, blobs: readonly string[], from: BlobSource): Promise<void> {
    const image = this.#image(name);
    await Promise.all(blobs.map(async (digest) => {
      if ((await this.#store.metadata.blobLinks.size(image, digest)) === null) await this.uploads.mount(name, digest, from);
    }));
  }

  /** A descriptor whose size differs from what it points to would break every pull: refused. */
  async #checkSizes(name: string, declared: readonly DeclaredSize[]): Promise<void> {
    const { blobLinks, manifests } = this.#store.metadata;
    const image = this.#image(name);
    for (const item of declared) {
      const stored = item.kind === 'blob' ? await blobLinks.size(image, item.digest) : (await manifests.inImage(image, item.digest))?.size ?? null;
      if (stored === null || stored === item.size) continue;
      throw new RegistryError('MANIFEST_INVALID', {
        message: `${item.where} gives size ${item.size} for ${item.digest}, but that ${item.kind} in ${this.key}/${name} is ${stored} bytes`,
        detail: { descriptor: item.where, digest: item.digest, declared: item.size, stored },
      });
    }
  }

  async deleteManifest(name: string, reference: string): Promise<void> {
    const { tags } = this.#store.metadata;
    const image = this.#image(name);
    const deleted = isDigest(reference) ? await this.#store.lifecycle.unlink(image, 'manifest', reference) : await tags.remove(image, reference);
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', { message: `manifest ${name}:${reference} is not in ${this.key}`, detail: { name, reference } });
  }

  async deleteImage(name: string): Promise<void> {
    if (!(await this.#store.metadata.images.remove(this.#image(name)))) {
      throw new RegistryError('NAME_UNKNOWN', { message: `no image ${name} in ${this.key}`, detail: { name } });
    }
  }

  /** A HEAD or GET: its pull time (gathered, written in batches) keeps the link for gc.grace, as a push would. */
  async statBlob(name: string, digest: string): Promise<number> {
    const image = this.#image(name);
    const size = await this.#store.metadata.blobLinks.size(image, digest);
    if (size === null) throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in ${this.key}/${name}`, detail: { digest } });
    this.#store.metadata.pulls.note('blob', image, digest);
    return size;
  }

  async openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null): Promise<BlobRead> {
    return readBlob(this.#store, this.#reader, digest, await this.statBlob(name, digest), pickRange);
  }

  /**
   * Unlinks the blob from the image (not while a tagged manifest of it needs the blob); the bytes
   * stay until the collector finds them unused.
   */
  async deleteBlob(name: string, digest: string): Promise<void> {
    if (!(await this.#store.lifecycle.unlink(this.#image(name), 'blob', digest))) {
      throw new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in ${this.key}/${name}`, detail: { digest } });
    }
  }

  async listTags(name: string, page: Page): Promise<Listing<string>> {
    const { images, tags } = this.#store.metadata;
    const image = this.#image(name);
    if (!(await images.exists(image))) throw new RegistryError('NAME_UNKNOWN', { message: `no image ${name} in ${this.key}`, detail: { name } });
    return listing(await tags.list(image, { ...page, n: page.n + 1 }), page);
  }

  async listImages(page: Page): Promise<Listing<string>> {
    return listing(await this.#store.metadata.images.list(this.key, { ...page, n: page.n + 1 }), page);
  }

  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    return (await this.#store.metadata.manifests.referrers(this.#image(name), digest)).map((row) => ({
      mediaType: row.media_type,
      digest: row.digest,
      size: row.size,
      ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
      ...(row.annotations ? { annotations: JSON.parse(row.annotations) as Record<string, string> } : {}),
    }));
  }

  #uploads(): Uploads {
    const { uploads, lifecycle, metadata } = this.#store;
    const owner = (name: string) => this.#image(name);
    return {
      start: (name) => uploads.start(owner(name)),
      status: (name, uuid) => uploads.status(owner(name), uuid),
      append: (name, uuid, body, range) => uploads.append(owner(name), uuid, body, range),
      cancel: (name, uuid) => uploads.cancel(owner(name), uuid),
      finish: (name, uuid, digest) => uploads.finish(owner(name), uuid, requireDigest(digest)),
      monolithic: (name, body, digest) => lifecycle.write(owner(name), body, requireDigest(digest)),
      mount: async (name: string, digest: string, from: BlobSource | null) => {
        const size = from
          ? await from.repository.statBlob(from.name, digest, from.options).catch(() => null)
          : await metadata.blobLinks.sizeInRepository(this.key, digest);
        if (size === null) return null;
        const link = () => lifecycle.linkExisting(owner(name), digest, size);
        return (await link()) || (from && (await stored(from, digest)) && (await link())) ? { digest, size } : null;
      },
    };
  }
}
