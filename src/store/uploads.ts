import { randomUUID, type Hash } from 'node:crypto';
import { readdir, truncate, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../oci/errors.js';
import { newHasher, type ParsedDigest } from '../oci/digest.js';
import type { BlobStore, ByteRange, WrittenBlob } from './blobs.js';
import { HashingFileWriter, hashFile } from './hashing.js';
import { removeQuietly } from './files.js';
import type { Layout } from './layout.js';
import type { MetadataStore } from './metadata.js';

/** Sessions untouched this long are purged at start-up (Distribution's default is the same). */
const uploadMaxAgeMs = 7 * 24 * 3600 * 1000;

export interface UploadOwner {
  repo: string;
  name: string;
}

export interface UploadState {
  uuid: string;
  /** Bytes received so far. */
  size: number;
}

interface LiveSession {
  /** sha256 of the bytes so far, so that finishing costs no second read of the file. */
  hash: Hash;
  size: number;
  busy: boolean;
}

/**
 * Upload sessions (POST → PATCH* → PUT). The bytes so far live in uploads/<uuid>; the running
 * hash lives in memory and is rebuilt from the file after a restart. A chunk that fails midway
 * is cut off again, so a session always holds whole chunks.
 */
export class UploadSessions {
  readonly #layout: Layout;
  readonly #metadata: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #live = new Map<string, LiveSession>();

  constructor(options: { layout: Layout; metadata: MetadataStore; blobs: BlobStore }) {
    this.#layout = options.layout;
    this.#metadata = options.metadata;
    this.#blobs = options.blobs;
  }

  async start(owner: UploadOwner): Promise<UploadState> {
    const uuid = randomUUID();
    await writeFile(this.#layout.upload(uuid), '');
    this.#metadata.createUpload({ uuid, repo: owner.repo, name: owner.name, started_at: Date.now() });
    this.#live.set(uuid, { hash: newHasher(), size: 0, busy: false });
    return { uuid, size: 0 };
  }

  async status(owner: UploadOwner, uuid: string): Promise<UploadState> {
    const session = await this.#session(owner, uuid);
    return { uuid, size: session.size };
  }

  /**
   * Appends a chunk. `range` is the client's Content-Range, if any: it must start where the
   * session ends (else 416, as the spec says for an out-of-order chunk).
   */
  async append(owner: UploadOwner, uuid: string, body: Readable, range?: ByteRange): Promise<UploadState> {
    const session = await this.#session(owner, uuid);
    if (range && range.start !== session.size) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', {
        status: 416,
        message: `chunk starts at byte ${range.start}, but the upload has ${session.size} bytes`,
        detail: { uuid, size: session.size },
      });
    }
    if (session.busy) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', { status: 416, message: 'another chunk of this upload is still being received', detail: { uuid } });
    }
    session.busy = true;
    const hash = session.hash.copy();
    const writer = new HashingFileWriter(this.#layout.upload(uuid), { hash, flags: 'r+', start: session.size });
    try {
      await pipeline(body, writer);
      if (range && writer.bytes !== range.end - range.start + 1) {
        throw new RegistryError('SIZE_INVALID', {
          status: 416,
          message: `Content-Range announces ${range.end - range.start + 1} bytes, the body had ${writer.bytes}`,
        });
      }
      session.hash = hash;
      session.size += writer.bytes;
    } catch (error) {
      await truncate(this.#layout.upload(uuid), session.size).catch(() => undefined);
      throw error;
    } finally {
      session.busy = false;
    }
    return { uuid, size: session.size };
  }

  /** Verifies the whole upload against `digest` and commits it as a blob; the session ends either way. */
  async finish(owner: UploadOwner, uuid: string, digest: ParsedDigest): Promise<WrittenBlob> {
    const session = await this.#session(owner, uuid);
    if (session.busy) throw new RegistryError('BLOB_UPLOAD_INVALID', { message: 'a chunk of this upload is still being received', detail: { uuid } });
    session.busy = true;
    const path = this.#layout.upload(uuid);
    try {
      const hash = digest.algorithm === 'sha256' ? session.hash.copy() : (await hashFile(path, newHasher(digest.algorithm))).hash;
      const actual = `${digest.algorithm}:${hash.digest('hex')}`;
      if (actual !== `${digest.algorithm}:${digest.hex}`) {
        throw new RegistryError('DIGEST_INVALID', { message: `uploaded content has digest ${actual}, not ${digest.algorithm}:${digest.hex}`, detail: { digest: actual } });
      }
      await this.#blobs.commit(path, digest);
      return { digest: actual, size: session.size };
    } finally {
      await this.#end(uuid);
    }
  }

  async cancel(owner: UploadOwner, uuid: string): Promise<void> {
    await this.#session(owner, uuid);
    await this.#end(uuid);
  }

  /** Drops sessions older than a week, and files a crash left without a session. */
  async purgeStale(): Promise<void> {
    for (const uuid of this.#metadata.staleUploads(Date.now() - uploadMaxAgeMs)) await this.#end(uuid);
    for (const file of await readdir(this.#layout.uploads)) {
      if (!this.#metadata.upload(file)) await removeQuietly(this.#layout.upload(file));
    }
  }

  async #end(uuid: string): Promise<void> {
    this.#live.delete(uuid);
    this.#metadata.deleteUpload(uuid);
    await removeQuietly(this.#layout.upload(uuid));
  }

  async #session(owner: UploadOwner, uuid: string): Promise<LiveSession> {
    const row = this.#metadata.upload(uuid);
    if (!row || row.repo !== owner.repo || row.name !== owner.name) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { message: `upload ${uuid} is not in progress for ${owner.repo}/${owner.name}`, detail: { uuid } });
    }
    let session = this.#live.get(uuid);
    if (!session) {
      // After a restart: rebuild the running hash from the bytes on disk.
      const { hash, size } = await hashFile(this.#layout.upload(uuid), newHasher());
      session = this.#live.get(uuid) ?? { hash, size, busy: false };
      this.#live.set(uuid, session);
    }
    return session;
  }
}
