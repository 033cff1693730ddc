import type { AcceptedTypes } from '../oci/accept.js';
import { isDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Descriptor } from '../oci/manifest.js';
import type { VirtualRepositoryConfig } from '../config/types.js';
import type { BlobRead, ByteRange, Listing, Manifest, Page, Repository } from './repository.js';

// A virtual repository: one endpoint over an ordered list of members, resolved as Artifactory
// does it. Members are flattened (a nested virtual repository contributes its own members in its
// own order) and then searched local members first, then remote members, each group in configured
// order; so a remote member, and through it an upstream, is asked only when no local member has
// the content. With resolveDockerTagsByTimestamp a tag is asked of every member and the most
// recently pushed answer wins. Writes go to the default deployment repository, a local member.

/** Answers that mean "not here, ask the next member". */
const absent = new Set(['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN']);

/**
 * Failures of one member that another member may make up for (its upstream is down or limited,
 * or the caller may not read it); any other error (a bad Range, say) is the answer.
 */
function isMemberFailure(error: unknown): boolean {
  if (!(error instanceof RegistryError)) return false;
  return error.status >= 500 || error.code === 'DENIED' || error.code === 'UNAUTHORIZED' || error.code === 'TOOMANYREQUESTS';
}

/** The members in resolution order: locals, then remotes, nested virtual repositories flattened. */
export function resolutionOrder(members: readonly Repository[]): Repository[] {
  const leaves: Repository[] = [];
  const visit = (list: readonly Repository[]) => {
    for (const member of list) {
      if (member instanceof VirtualRepository) visit(member.members);
      else if (!leaves.includes(member)) leaves.push(member);
    }
  };
  visit(members);
  return [...leaves.filter((m) => m.kind === 'local'), ...leaves.filter((m) => m.kind !== 'local')];
}

/** Merges sorted pages of several members into one page of distinct items. */
function mergePages(pages: Listing<string>[], page: Page): Listing<string> {
  const items = [...new Set(pages.flatMap((listing) => listing.items))].sort();
  const more = items.length > page.n || pages.some((listing) => listing.more);
  return { items: items.slice(0, page.n), more };
}

export interface VirtualRepositoryOptions {
  key: string;
  config: VirtualRepositoryConfig;
  /** The configured members, in configured order (already built). */
  members: readonly Repository[];
  /** The local member that receives pushes, if one is configured. */
  deployment: Repository | null;
}

export class VirtualRepository implements Repository {
  readonly kind = 'virtual';
  readonly key: string;
  readonly members: readonly Repository[];
  readonly deployment: Repository | null;
  readonly #order: Repository[];
  readonly #byTimestamp: boolean;

  // Writes exist only with a deployment repository (capabilities, not refusing stubs).
  readonly uploads?: Repository['uploads'];
  readonly putManifest?: Repository['putManifest'];
  readonly deleteManifest?: Repository['deleteManifest'];
  readonly deleteBlob?: Repository['deleteBlob'];

  constructor(options: VirtualRepositoryOptions) {
    this.key = options.key;
    this.members = options.members;
    this.deployment = options.deployment;
    this.#order = resolutionOrder(options.members);
    this.#byTimestamp = options.config.resolveDockerTagsByTimestamp;
    const target = options.deployment;
    if (target) {
      this.uploads = target.uploads;
      this.putManifest = target.putManifest?.bind(target);
      this.deleteManifest = target.deleteManifest?.bind(target);
      this.deleteBlob = target.deleteBlob?.bind(target);
    }
  }

  /** The first member that has the content, in resolution order. */
  async #first<T>(ask: (member: Repository) => Promise<T>, notFound: () => RegistryError): Promise<T> {
    let failure: unknown = null;
    for (const member of this.#order) {
      try {
        return await ask(member);
      } catch (error) {
        if (error instanceof RegistryError && absent.has(error.code)) continue;
        if (!isMemberFailure(error)) throw error;
        failure ??= error;
      }
    }
    throw failure ?? notFound();
  }

  /** Every member's answer, skipping those that do not have the content. */
  async #all<T>(ask: (member: Repository) => Promise<T>): Promise<T[]> {
    const answers: T[] = [];
    let failure: unknown = null;
    for (const member of this.#order) {
      try {
        answers.push(await ask(member));
      } catch (error) {
        if (error instanceof RegistryError && absent.has(error.code)) continue;
        if (!isMemberFailure(error)) throw error;
        failure ??= error;
      }
    }
    if (answers.length === 0 && failure) throw failure;
    return answers;
  }

  #missing(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'NAME_UNKNOWN', what: string): () => RegistryError {
    return () => new RegistryError(code, { message: `${what} is in no member of ${this.key}` });
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes): Promise<Manifest> {
    const ask = (member: Repository) => member.getManifest(name, reference, accepted);
    const missing = this.#missing('MANIFEST_UNKNOWN', `manifest ${name}:${reference}`);
    if (!this.#byTimestamp || isDigest(reference)) return this.#first(ask, missing);
    const found = await this.#all(ask);
    if (found.length === 0) throw missing();
    // The newest push wins; among equals, resolution order decides (reduce keeps the first).
    return found.reduce((best, candidate) => ((candidate.pushedAt ?? 0) > (best.pushedAt ?? 0) ? candidate : best));
  }

  statBlob(name: string, digest: string): Promise<number> {
    return this.#first((member) => member.statBlob(name, digest), this.#missing('BLOB_UNKNOWN', `blob ${digest} of ${name}`));
  }

  openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null): Promise<BlobRead> {
    return this.#first((member) => member.openBlob(name, digest, pickRange), this.#missing('BLOB_UNKNOWN', `blob ${digest} of ${name}`));
  }

  async listTags(name: string, page: Page): Promise<Listing<string>> {
    const pages = await this.#all((member) => member.listTags(name, page));
    if (pages.length === 0) throw this.#missing('NAME_UNKNOWN', `image ${name}`)();
    return mergePages(pages, page);
  }

  async listImages(page: Page): Promise<Listing<string>> {
    return mergePages(await this.#all((member) => member.listImages(page)), page);
  }

  /** Referrers held by the local members; remote members are asked only when those hold none. */
  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    const seen = new Map<string, Descriptor>();
    for (const group of [this.#order.filter((m) => m.kind === 'local'), this.#order.filter((m) => m.kind !== 'local')]) {
      for (const member of group) {
        const found = await member.referrers(name, digest).catch((error: unknown) => {
          if (error instanceof RegistryError && (absent.has(error.code) || isMemberFailure(error))) return [];
          throw error;
        });
        for (const descriptor of found) if (!seen.has(descriptor.digest)) seen.set(descriptor.digest, descriptor);
      }
      if (seen.size > 0) break;
    }
    return [...seen.values()];
  }
}
