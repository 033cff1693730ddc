import { RegistryError } from '../oci/errors.js';
import type { HistoryEntry, ImageDetails } from '../oci/image-config.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import type { Store } from '../store/index.js';
import type { ImageRef, ManifestInfo, SearchQuery, SearchRow } from '../store/metadata/types.js';
import { extractInfo } from './image-info.js';
import { maxScanned, type ReadOptions, type Repository } from './repository.js';
import { resolutionOrder, VirtualRepository } from './virtual.js';

// What the management API tells about images: a tag's info (Artifactory's Docker Info tab) and
// search over tags. Image info comes from metadata extracted when a manifest was stored; a
// manifest stored before (or cached by a remote repository before its config was) has it
// extracted here, once, when its config is in the store.

export interface PlatformImage extends Omit<ImageDetails, 'history'> {
  digest: string;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  created: string | null;
  /** Config and layers, compressed. */
  size: number;
  labels: Record<string, string>;
  history: HistoryEntry[];
}

export interface TagInfo {
  /** The repository that holds the tag (a virtual repository's member). */
  repository: string;
  image: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** The manifest's own size in bytes. */
  manifestSize: number;
  /** Every platform image's config and layers, compressed (a layer shared by two counts twice). */
  totalSize: number;
  platforms: { os: string | null; architecture: string | null; variant: string | null; digest: string }[];
  lastPushed: number;
  lastPulled: number | null;
  downloadCount: number;
  /** One entry per platform image (one for a single-platform image); an index's children not stored yet are left out. */
  images: PlatformImage[];
}

function platformImage(digest: string, info: ManifestInfo, platform: Descriptor['platform'] | null): PlatformImage {
  const details = JSON.parse(info.details) as ImageDetails;
  return {
    ...details,
    digest,
    os: info.os ?? platform?.os ?? null,
    architecture: info.architecture ?? platform?.architecture ?? null,
    variant: info.variant ?? platform?.variant ?? null,
    created: info.created,
    size: info.size,
    labels: info.labels,
  };
}


const keyOf = (row: SearchRow): [string, string, string] => [row.repo, row.name, row.tag];

export class ImageCatalog {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** A tag's info in a local or remote repository, or (virtual) in the first member that has it and the caller may read. */
  async tagInfo(repository: Repository, name: string, tag: string, options: ReadOptions = {}): Promise<TagInfo> {
    if (!(repository instanceof VirtualRepository)) return this.#tagInfo({ repo: repository.key, name }, tag);
    for (const member of resolutionOrder(repository.members)) {
      if (options.member && options.member(member, name) === null) continue;
      const found = await this.#tagInfo({ repo: member.key, name }, tag).catch((error: unknown) => {
        if (error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN') return null;
        throw error;
      });
      if (found) return found;
    }
    throw new RegistryError('MANIFEST_UNKNOWN', { message: `no tag ${tag} of ${name} in any member of ${repository.key}`, detail: { name, tag } });
  }

  async #tagInfo(image: ImageRef, tag: string): Promise<TagInfo> {
    const { tags, manifests, management } = this.#store.metadata;
    const row = await tags.get(image, tag);
    const stored = row && (await manifests.content(row.digest));
    if (!row || !stored) throw new RegistryError('MANIFEST_UNKNOWN', { message: `no tag ${tag} of ${image.name} in ${image.repo}`, detail: { name: image.name, tag } });
    const manifest = parseManifest(stored.content, stored.media_type);
    const children: { digest: string; platform: Descriptor['platform'] | null }[] = manifest.kind === 'index'
      ? manifest.children.map((child) => ({ digest: child.digest, platform: child.platform ?? null }))
      : [{ digest: manifest.digest, platform: null }];
    const infos = new Map((await management.info(children.map((child) => child.digest))).map((info) => [info.digest, info]));
    for (const child of children) {
      if (!infos.has(child.digest)) {
        const info = await this.#extract(child.digest);
        if (info) infos.set(child.digest, { ...info, digest: child.digest });
      }
    }
    const images = children.flatMap((child) => {
      const info = infos.get(child.digest);
      return info && info.os !== 'unknown' && child.platform?.os !== 'unknown' ? [platformImage(child.digest, info, child.platform)] : [];
    });
    // Pulls are written in batches: write this process's pending ones, so the counts are current.
    await this.#store.metadata.pulls.flush();
    const usage = await management.usage(image, manifest.digest);
    return {
      repository: image.repo,
      image: image.name,
      tag,
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      manifestSize: stored.size,
      totalSize: images.reduce((total, item) => total + item.size, 0),
      platforms: children.filter((child) => child.platform?.os !== 'unknown').map((child) => ({
        os: child.platform?.os ?? infos.get(child.digest)?.os ?? null,
        architecture: child.platform?.architecture ?? infos.get(child.digest)?.architecture ?? null,
        variant: child.platform?.variant ?? infos.get(child.digest)?.variant ?? null,
        digest: child.digest,
      })),
      lastPushed: row.pushed_at,
      lastPulled: usage?.pulled_at ?? null,
      downloadCount: usage?.downloads ?? 0,
      images,
    };
  }

  /** Extracts and stores the info of a manifest stored without it (if its config is in the store). */
  async #extract(digest: string): Promise<ManifestInfo | null> {
    const stored = await this.#store.metadata.manifests.content(digest);
    if (!stored) return null;
    const info = await extractInfo(this.#store, parseManifest(stored.content, stored.media_type), stored.content);
    if (info && info.configDigest && (await this.#store.blobs.stat(info.configDigest))) await this.#store.metadata.management.putInfo(digest, info);
    return info;
  }

  /**
   * A page of search results the caller may read: `readable` filters rows (permissions are per
   * image); pages are filled from the rows that follow, but no more than `maxScanned` rows are
   * read for one page, so a caller who may read little of a large repository cannot make one
   * request walk all of it. `resume`: where the next page starts, null when the search is done
   * (a page may then be short, even empty, and still have a next one).
   */
  async search(query: Omit<SearchQuery, 'limit'>, n: number, readable: (row: SearchRow) => boolean): Promise<{ rows: SearchRow[]; resume: [string, string, string] | null }> {
    const rows: SearchRow[] = [];
    let after = query.after;
    const batch = Math.min(Math.max(n * 2, 100), 5000);
    for (let scanned = 0; scanned < maxScanned; scanned += batch) {
      // The last batch stops at maxScanned, whatever n made the batch size.
      const limit = Math.min(batch, maxScanned - scanned);
      const found = await this.#store.metadata.management.search({ ...query, after, limit });
      for (const row of found) {
        if (!readable(row)) continue;
        if (rows.length === n) return { rows, resume: keyOf(rows.at(-1)!) };
        rows.push(row);
      }
      if (found.length < limit) return { rows, resume: null };
      after = keyOf(found.at(-1)!);
    }
    return { rows, resume: after };
  }
}
