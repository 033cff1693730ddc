import type { AcceptedTypes } from '../oci/accept.js';
import { isDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Descriptor } from '../oci/manifest.js';
import type { VirtualRepositoryConfig } from '../config/types.js';
import { maxScanned, type BlobRead, type ByteRange, type Listing, type Manifest, type Page, type ReadOptions, type Repository } from './repository.js';

// A virtual repository: one endpoint over an ordered list of members, resolved as Artifactory
// does it. Members are flattened (a nested virtual repository contributes its own members in its
// own order) and then searched local members first, then remote members, each group in configured
// order; so a remote member, and through it an upstream, is asked only when no local member has
// the content. With resolveDockerTagsByTimestamp a tag is asked of every member and the most
// recently pushed answer wins. Each member is read with the caller's permissions on that member
// (ReadOptions.member); a member the caller may not read is passed over as if it had nothing (a
// not-found answer then says that only the members the caller may read were asked).
// Writes land in the default deployment repository, a local member: the HTTP layer authorizes and
// performs them there (Repository.deployment), so this class has no write capabilities itself. A
// manifest pushed through it may name blobs another member holds (its blob HEAD said so): they are
// linked into the deployment repository from this one, read as the caller (PutManifestOptions.from).

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
  // A member that stopped at its scan cap read nothing after it: neither may the merged page.
  const scannedTo = pages.map((listing) => listing.scannedTo).filter((name) => name !== undefined).sort()[0];
  const items = [...new Set(pages.flatMap((listing) => listing.items))].filter((name) => scannedTo === undefined || name <= scannedTo).sort();
  const more = items.length > page.n || pages.some((listing) => listing.more);
  return { items: items.slice(0, page.n), more, ...(scannedTo !== undefined && items.length <= page.n ? { scannedTo } : {}) };
}

type Ask<T> = (member: Repository, options: ReadOptions | undefined) => Promise<T>;

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

  constructor(options: VirtualRepositoryOptions) {
    this.key = options.key;
    this.members = options.members;
    this.deployment = options.deployment;
    this.#order = resolutionOrder(options.members);
    this.#byTimestamp = options.config.resolveDockerTagsByTimestamp;
  }

  /** The members the caller may read `name` in, in resolution order, each with its own read options. */
  #readable(name: string, options: ReadOptions | undefined): [Repository, ReadOptions | undefined][] {
    const readable: [Repository, ReadOptions | undefined][] = [];
    for (const member of this.#order) {
      const memberOptions = options?.member ? options.member(member, name) : options;
      if (memberOptions !== null) readable.push([member, options?.head && memberOptions ? { ...memberOptions, head: true } : memberOptions]);
    }
    return readable;
  }

  /** The first member that has the content, in resolution order. */
  async #first<T>(name: string, options: ReadOptions | undefined, ask: Ask<T>, notFound: () => RegistryError): Promise<T> {
    let failure: unknown = null;
    for (const [member, memberOptions] of this.#readable(name, options)) {
      try {
        return await ask(member, memberOptions);
      } catch (error) {
        if (error instanceof RegistryError && absent.has(error.code)) continue;
        if (!isMemberFailure(error)) throw error;
        failure ??= error;
      }
    }
    throw failure ?? notFound();
  }

  /** Every member's answer, skipping those that do not have the content. */
  async #all<T>(name: string, options: ReadOptions | undefined, ask: Ask<T>): Promise<T[]> {
    const answers: T[] = [];
    let failure: unknown = null;
    for (const [member, memberOptions] of this.#readable(name, options)) {
      try {
        answers.push(await ask(member, memberOptions));
      } catch (error) {
        if (error instanceof RegistryError && absent.has(error.code)) continue;
        if (!isMemberFailure(error)) throw error;
        failure ??= error;
      }
    }
    if (answers.length === 0 && failure) throw failure;
    return answers;
  }

  /**
   * Not found. When members were passed over (the caller may not read them), it says so without
   * naming them, and does not claim they lack it.
   */
  #missing(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'NAME_UNKNOWN', what: string, name: string, options: ReadOptions | undefined): () => RegistryError {
    return () => {
      const passedOver = this.#readable(name, options).length < this.#order.length;
      return new RegistryError(code, { message: passedOver ? `${what} is not in the members of ${this.key} you may read` : `${what} is in no member of ${this.key}` });
    };
  }

  async getManifest(name: string, reference: string, accepted: AcceptedTypes, options?: ReadOptions): Promise<Manifest> {
    const ask: Ask<Manifest> = (member, memberOptions) => member.getManifest(name, reference, accepted, memberOptions);
    const missing = this.#missing('MANIFEST_UNKNOWN', `manifest ${name}:${reference}`, name, options);
    if (!this.#byTimestamp || isDigest(reference)) return this.#first(name, options, ask, missing);
    const found = await this.#all(name, options, ask);
    if (found.length === 0) throw missing();
    // The newest push wins; among equals, resolution order decides (reduce keeps the first).
    return found.reduce((best, candidate) => ((candidate.pushedAt ?? 0) > (best.pushedAt ?? 0) ? candidate : best));
  }

  /**
   * A blob HEAD, which is also what push clients ask before each upload: a member whose upstream
   * is down counts as not having the blob, so pushes through this repository go on while it is
   * (containers/image gives up on anything but 200 or 404). A GET still answers the failure.
   */
  statBlob(name: string, digest: string, options?: ReadOptions): Promise<number> {
    const ask: Ask<number> = (member, memberOptions) => member.statBlob(name, digest, memberOptions);
    const missing = this.#missing('BLOB_UNKNOWN', `blob ${digest} of ${name}`, name, options);
    return this.#first(name, options, ask, missing).catch((error: unknown) => {
      throw isMemberFailure(error) ? missing() : error;
    });
  }

  openBlob(name: string, digest: string, pickRange?: (size: number) => ByteRange | null, options?: ReadOptions): Promise<BlobRead> {
    const ask: Ask<BlobRead> = (member, memberOptions) => member.openBlob(name, digest, pickRange, memberOptions);
    return this.#first(name, options, ask, this.#missing('BLOB_UNKNOWN', `blob ${digest} of ${name}`, name, options));
  }

  async listTags(name: string, page: Page, options?: ReadOptions): Promise<Listing<string>> {
    const pages = await this.#all(name, options, (member, memberOptions) => member.listTags(name, page, memberOptions));
    if (pages.length === 0) throw this.#missing('NAME_UNKNOWN', `image ${name}`, name, options)();
    return mergePages(pages, page);
  }

  async listImages(page: Page, options?: ReadOptions): Promise<Listing<string>> {
    const pages: Listing<string>[] = [];
    for (const member of this.#order) pages.push(await this.#readableImages(member, page, options));
    return mergePages(pages, page);
  }

  /**
   * A page of a member's image names, only those the caller may read there (read on until full,
   * or until maxScanned names are read: then `scannedTo` says where it stopped).
   */
  async #readableImages(member: Repository, page: Page, options: ReadOptions | undefined): Promise<Listing<string>> {
    const items: string[] = [];
    let last = page.last;
    for (let scanned = 0; ;) {
      if (scanned >= maxScanned) return { items, more: true, scannedTo: last! };
      const listing = await member.listImages({ n: Math.min(page.n + 1, maxScanned - scanned), ...(last === undefined ? {} : { last }) }, options?.member ? undefined : options);
      scanned += listing.items.length;
      for (const name of listing.items) {
        if (options?.member && options.member(member, name) === null) continue;
        if (items.length === page.n) return { items, more: true };
        items.push(name);
      }
      if (!listing.more || listing.items.length === 0) return { items, more: false };
      last = listing.items.at(-1);
    }
  }

  /** Referrers held by the local members; remote members are asked only when those hold none. */
  async referrers(name: string, digest: string, options?: ReadOptions): Promise<Descriptor[]> {
    const seen = new Map<string, Descriptor>();
    const readable = this.#readable(name, options);
    for (const group of [readable.filter(([m]) => m.kind === 'local'), readable.filter(([m]) => m.kind !== 'local')]) {
      for (const [member, memberOptions] of group) {
        const found = await member.referrers(name, digest, memberOptions).catch((error: unknown) => {
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
