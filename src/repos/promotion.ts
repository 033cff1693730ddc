import { RegistryError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { schema1Types } from '../oci/mediatypes.js';
import { isValidTag, requireName } from '../oci/names.js';
import type { LocalRepositoryConfig, RepositoryConfig } from '../config/types.js';
import type { Store } from '../store/index.js';
import type { Concerns, ImageRef, TagDetail } from '../store/metadata/types.js';
import { platformTagsOf } from './image-info.js';
import type { TagsDropped } from './repository.js';

// Promotion, as Artifactory's POST api/docker/<repoKey>/v2/promote: tags of an image (one, or
// all of them) go to an image of a local repository, under the same or other names. Metadata
// only: the target image links the manifests and blobs the source image holds (an index with
// its children, and the referrers — signatures, SBOMs — the source holds of any of them); no
// byte is copied. A copy leaves the source as it was; a move takes the tags from the source
// (a whole-image move takes the image: what stays untagged there goes at the next collection).
// Platform tags follow the target's platformTags setting; its maxUniqueTags applies.
//
// Two steps, so that the caller can be authorized in between: `plan` reads what would change
// (which tags, which target tags would be overwritten); `apply` does it in one transaction,
// after checking that source and target are still as planned.

export interface PromotionRequest {
  repository: string;
  image: string;
  targetRepository: string;
  /** null: the same name as `image`. */
  targetImage: string | null;
  /** null: every tag of the image. */
  tag: string | null;
  /** null: the same tag. */
  targetTag: string | null;
  /** false: move. */
  copy: boolean;
}

export interface PromotionPlan {
  source: ImageRef;
  target: ImageRef;
  copy: boolean;
  wholeImage: boolean;
  tags: { tag: string; targetTag: string; digest: string }[];
  /** Target tags that now point to another manifest: promotion overwrites them. */
  overwrites: { tag: string; digest: string }[];
}

export interface PromotionOptions {
  store: Store;
  repositories: Readonly<Record<string, RepositoryConfig>>;
  onTagsDropped?: TagsDropped;
  /** Runs in the transaction after the checks, before anything is linked (tests force interleavings with it). */
  beforeLink?: () => Promise<void>;
}

const invalid = (message: string) => new RegistryError('REQUEST_INVALID', { message });
const unsupported = (message: string, detail: unknown) => new RegistryError('UNSUPPORTED', { status: 400, message, detail });
const changed = () => new RegistryError('UNSUPPORTED', { status: 409, message: 'the source or target changed while the promotion was prepared; nothing was changed, try again' });

export class Promotion {
  readonly #store: Store;
  readonly #repositories: Readonly<Record<string, RepositoryConfig>>;
  readonly #onTagsDropped: TagsDropped;
  readonly #beforeLink: () => Promise<void>;

  constructor(options: PromotionOptions) {
    this.#beforeLink = options.beforeLink ?? (async () => undefined);
    this.#store = options.store;
    this.#repositories = options.repositories;
    this.#onTagsDropped = options.onTagsDropped ?? (() => undefined);
  }

  #repository(key: string): RepositoryConfig {
    const config = this.#repositories[key];
    if (!config) throw new RegistryError('NAME_UNKNOWN', { message: `no repository ${JSON.stringify(key)}`, detail: { repository: key } });
    return config;
  }

  #target(key: string): LocalRepositoryConfig {
    const config = this.#repository(key);
    if (config.type !== 'local') throw unsupported(`cannot promote to ${key}: it is a ${config.type} repository; the target must be a local repository`, { targetRepo: key, type: config.type });
    return config;
  }

  async plan(request: PromotionRequest): Promise<PromotionPlan> {
    const sourceConfig = this.#repository(request.repository);
    this.#target(request.targetRepository);
    if (sourceConfig.type === 'virtual') {
      throw unsupported(`${request.repository} is a virtual repository: promote from the member that holds the image`, { repository: request.repository });
    }
    if (sourceConfig.type === 'remote' && !request.copy) {
      throw unsupported(`${request.repository} is a remote repository: its cached images can be copied (copy: true), not moved`, { repository: request.repository });
    }
    for (const tag of [request.tag, request.targetTag]) if (tag !== null && !isValidTag(tag)) throw invalid(`invalid tag ${JSON.stringify(tag)}`);
    if (request.tag === null && request.targetTag !== null) throw invalid('targetTag needs tag: a whole image keeps its tag names');
    const source = { repo: request.repository, name: requireName(request.image) };
    const target = { repo: request.targetRepository, name: requireName(request.targetImage ?? request.image) };
    const { tags } = this.#store.metadata;
    const sourceTags = await tags.details(source);
    let chosen: TagDetail[];
    if (request.tag === null) {
      chosen = sourceTags.filter((row) => row.platform_of === null);
      if (chosen.length === 0) throw new RegistryError('NAME_UNKNOWN', { message: `no image ${source.name} with tags in ${source.repo}`, detail: { name: source.name } });
    } else {
      const row = sourceTags.find((candidate) => candidate.tag === request.tag);
      if (!row) {
        const known = sourceTags.length > 0 || (await this.#store.metadata.images.exists(source));
        throw known
          ? new RegistryError('MANIFEST_UNKNOWN', { message: `no tag ${request.tag} of ${source.name} in ${source.repo}`, detail: { name: source.name, tag: request.tag } })
          : new RegistryError('NAME_UNKNOWN', { message: `no image ${source.name} in ${source.repo}`, detail: { name: source.name } });
      }
      chosen = [row];
    }
    const planned = chosen.map((row) => ({ tag: row.tag, targetTag: request.targetTag ?? row.tag, digest: row.digest }));
    const sameImage = source.repo === target.repo && source.name === target.name;
    if (sameImage && planned.every((item) => item.tag === item.targetTag)) throw invalid(`source and target are the same (${source.repo}/${source.name}); name another targetRepo, targetDockerRepository or targetTag`);
    const current = new Map((await tags.details(target)).map((row) => [row.tag, row.digest]));
    const overwrites = planned.flatMap((item) => {
      const digest = current.get(item.targetTag);
      return digest !== undefined && digest !== item.digest ? [{ tag: item.targetTag, digest }] : [];
    });
    return { source, target, copy: request.copy, wholeImage: request.tag === null, tags: planned, overwrites };
  }

  /** Carries out a plan in one transaction; returns the tags the target's maxUniqueTags removed. */
  async apply(plan: PromotionPlan): Promise<string[]> {
    const targetConfig = this.#target(plan.target.repo);
    const now = this.#store.now();
    const dropped = await this.#store.metadata.transaction(async (tx) => {
      await checkUnchanged(tx, plan);
      const closure = await tx.management.closure(plan.source, [...new Set(plan.tags.map((item) => item.digest))]);
      if (closure.missing.length > 0) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', {
          message: `${plan.source.repo}/${plan.source.name} does not hold ${closure.missing.length} blob(s) or manifest(s) the promoted manifests need (${closure.missing.slice(0, 3).join(', ')}); `
            + 'a remote repository holds what was pulled through it: pull the image (every platform) once, then promote it',
          detail: { missing: closure.missing },
        });
      }
      if (targetConfig.blockSchema1) await refuseSchema1(tx, closure.manifests, plan.target.repo);
      await this.#beforeLink();
      if (!(await tx.management.link(plan.target, closure, now))) {
        throw new RegistryError('UNSUPPORTED', { status: 409, message: 'a blob or manifest of the image is being garbage-collected; nothing was changed, try again' });
      }
      const removed: string[] = [];
      for (const item of plan.tags) {
        // The target tag as planned (absent, the same manifest, or an overwrite the caller may
        // make) until the commit: a push beside the transaction is not overwritten.
        const replaces = plan.overwrites.filter((overwrite) => overwrite.tag === item.targetTag).map((overwrite) => overwrite.digest);
        if (!(await tx.tags.hold(plan.target, item.targetTag, item.digest, now, replaces))) throw changed();
        const platformTags = targetConfig.platformTags ? await platformTagsFor(tx, item.targetTag, item.digest) : [];
        removed.push(...await tx.tags.set(plan.target, item.targetTag, item.digest, now, { platformTags, maxUniqueTags: targetConfig.maxUniqueTags }));
      }
      if (!plan.copy) {
        // Only the planned tags leave (a whole image's were checked to be all of them), each only
        // while it still names the promoted manifest (a push may have moved it since the check:
        // PostgreSQL runs it beside this transaction); then a whole image leaves the source,
        // unless a tag arrived meanwhile.
        for (const item of plan.tags) if (!(await tx.tags.remove(plan.source, item.tag, item.digest))) throw changed();
        if (plan.wholeImage && (await tx.tags.details(plan.source)).length === 0) await tx.images.remove(plan.source);
      }
      return [...new Set(removed)];
    });
    if (dropped.length > 0) this.#onTagsDropped({ repository: plan.target.repo, image: plan.target.name, tags: dropped, limit: targetConfig.maxUniqueTags });
    return dropped;
  }
}

/** How the audit trail names a promotion: source->target, with tags when one tag was promoted. */
export function promotionTarget(plan: PromotionPlan): string {
  const tags = plan.wholeImage ? null : plan.tags[0]!;
  return `${plan.source.repo}/${plan.source.name}${tags ? `:${tags.tag}` : ''}->${plan.target.repo}/${plan.target.name}${tags ? `:${tags.targetTag}` : ''}`;
}

/** Source tags as planned (for a whole image, no other tag either); target tags are held as planned when set. */
async function checkUnchanged(tx: Concerns, plan: PromotionPlan): Promise<void> {
  const sourceRows = await tx.tags.details(plan.source);
  if (plan.wholeImage && sourceRows.filter((row) => row.platform_of === null).length !== plan.tags.length) throw changed();
  const source = new Map(sourceRows.map((row) => [row.tag, row.digest]));
  for (const item of plan.tags) if (source.get(item.tag) !== item.digest) throw changed();
}

/** A target that blocks schema1 (blockSchema1) takes none by promotion either. */
async function refuseSchema1(tx: Concerns, digests: string[], target: string): Promise<void> {
  for (const digest of digests) {
    const row = await tx.manifests.content(digest);
    if (row && schema1Types.has(row.media_type)) {
      throw new RegistryError('MANIFEST_INVALID', { message: `${digest} is a Docker schema1 manifest and ${target} blocks them (blockSchema1); convert the image to schema2 or OCI first`, detail: { digest } });
    }
  }
}

async function platformTagsFor(tx: Concerns, tag: string, digest: string) {
  const row = await tx.manifests.content(digest);
  if (!row) return [];
  const manifest = parseManifest(row.content, row.media_type);
  return manifest.kind === 'index' ? platformTagsOf(tag, manifest.children) : [];
}
