import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';
import { newHasher, type ParsedDigest } from '../oci/digest.js';
import type { ByteRange, SessionBytes, WrittenBlob } from './blobs/types.js';
import { hashStream } from './blobs/hashing.js';
import { ThreadHash } from './blobs/hash-thread.js';
import { storageFailure } from './full.js';
import type { BlobLifecycle } from './lifecycle.js';
import type { ImageRef, Metadata } from './metadata/types.js';
import type { SessionLocks } from './session-locks.js';

export interface UploadState {
  uuid: string;
  /** Bytes received so far. */
  size: number;
}

interface LiveSession {
  /** sha256 of the bytes so far, so that finishing costs no second read (kept by the hashing thread). */
  hash: ThreadHash;
  size: number;
}

/** Session bytes without a row younger than this are left to the process starting them (clocks of nodes and store may differ too). */
export const startingGrace = 10 * 60_000;

function unknown(uuid: string, owner: ImageRef): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', { message: `upload ${uuid} is not in progress for ${owner.repo}/${owner.name}`, detail: { uuid } });
}

/**
 * Upload sessions (POST → PATCH* → PUT). The bytes so far live with the blob driver (a file, or
 * objects in S3), so any process serving the store can continue a session; the running hash lives
 * in memory, on the process's hashing thread (blobs/hash-thread.ts): rebuilt from the bytes when a
 * process meets a session it has not seen (after a restart, or on another node), caught up with
 * the chunks another process appended since it last saw it (another worker). Appends and finishes hold the session's lock (session-locks.ts), across
 * processes. A session always resumes, finishes or answers BLOB_UPLOAD_UNKNOWN.
 */
export class UploadSessions {
  readonly #live = new Map<string, LiveSession>();

  constructor(
    private readonly metadata: Metadata,
    private readonly bytes: SessionBytes,
    private readonly lifecycle: BlobLifecycle,
    private readonly options: { now: () => number; log: (message: string) => void; locks: SessionLocks },
  ) {}

  /**
   * Holds the session's lock for `work`; refused (BLOB_UPLOAD_INVALID) while another request holds
   * it, naming the session's size as stored now (what a status request says) so the client can resume.
   */
  async #locked<T>(owner: ImageRef, uuid: string, refusal: { status?: number; message: string }, work: () => Promise<T>): Promise<T> {
    const release = await this.options.locks.tryLock(uuid);
    if (!release) {
      await this.#requireOwner(owner, uuid);
      const size = await this.bytes.size(uuid);
      throw new RegistryError('BLOB_UPLOAD_INVALID', { ...refusal, detail: { uuid, ...(size === null ? {} : { size }) } });
    }
    try {
      return await work();
    } finally {
      await release();
    }
  }

  async start(owner: ImageRef): Promise<UploadState> {
    const uuid = randomUUID();
    await this.bytes.create(uuid).catch((error: unknown) => { throw storageFailure(error, this.options.log); });
    try {
      await this.metadata.uploads.create({ uuid, repo: owner.repo, name: owner.name, started_at: this.options.now() });
    } catch (error) {
      // No session without its row: the bytes' marker goes now, not at uploads.expireAfter.
      await this.bytes.delete(uuid).catch(() => undefined);
      throw error;
    }
    this.#live.set(uuid, { hash: ThreadHash.create(), size: 0 });
    return { uuid, size: 0 };
  }

  async status(owner: ImageRef, uuid: string): Promise<UploadState> {
    const session = await this.#session(owner, uuid);
    return { uuid, size: session.size };
  }

  /**
   * Appends a chunk. `range` is the client's Content-Range, if any: it must start where the
   * session ends (else 416, as the spec says for an out-of-order chunk), and the body must be as
   * long as it says (else 400 SIZE_INVALID). A refused chunk leaves nothing behind.
   */
  async append(owner: ImageRef, uuid: string, body: Readable, range?: ByteRange): Promise<UploadState> {
    return this.#locked(owner, uuid, { status: 416, message: 'another chunk of this upload is still being received' }, async () => {
      const session = await this.#session(owner, uuid);
      if (range && range.start !== session.size) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', {
          status: 416,
          message: `chunk starts at byte ${range.start}, but the upload has ${session.size} bytes`,
          detail: { uuid, size: session.size },
        });
      }
      const hash = session.hash.copy();
      const length = range ? { length: range.end - range.start + 1 } : {};
      session.size = await this.bytes.append(uuid, session.size, body, hash, length).catch((error: unknown) => {
        // A chunk of the wrong length was dropped whole: the upload stands where it stood.
        if (error instanceof RegistryError && error.code === 'SIZE_INVALID') throw new RegistryError(error.code, { message: error.message, detail: { uuid, size: session.size } });
        throw storageFailure(error, this.options.log);
      });
      session.hash = hash;
      return { uuid, size: session.size };
    });
  }

  /** Verifies the whole upload against `digest` and links it into the image as a blob; the session ends either way. */
  async finish(owner: ImageRef, uuid: string, digest: ParsedDigest): Promise<WrittenBlob> {
    return this.#locked(owner, uuid, { message: 'a chunk of this upload is still being received' }, async () => {
      const session = await this.#session(owner, uuid);
      try {
        const hex = digest.algorithm === 'sha256' ? await this.#sha256(uuid, session) : (await this.#rehash(uuid, newHasher(digest.algorithm))).digest('hex');
        const actual = `${digest.algorithm}:${hex}`;
        const expected = `${digest.algorithm}:${digest.hex}`;
        if (actual !== expected) {
          throw new RegistryError('DIGEST_INVALID', { message: `uploaded content has digest ${actual}, not ${expected}`, detail: { digest: actual } });
        }
        await this.bytes.settle?.(uuid);
        // Start-up repair finishes this link if the process dies after the bytes moved.
        await this.metadata.uploads.committing(uuid, expected);
        return await this.lifecycle.commit(owner, expected, session.size, () => this.bytes.commit(uuid, digest));
      } finally {
        await this.#end(uuid);
      }
    });
  }

  async cancel(owner: ImageRef, uuid: string): Promise<void> {
    await this.#session(owner, uuid);
    await this.#end(uuid);
  }

  /** Ends sessions started before `before` (the collector's uploads.expireAfter); returns how many. */
  async expire(before: number): Promise<number> {
    let ended = 0;
    for (let batch = await this.metadata.uploads.startedBefore(before, 500); batch.length > 0; batch = await this.metadata.uploads.startedBefore(before, 500)) {
      for (const row of batch) await this.#end(row.uuid);
      ended += batch.length;
    }
    await this.#dropOrphans(before);
    return ended + (await this.bytes.abortAbandoned(before));
  }

  /** Drops session bytes last written before `before` that have no session row. */
  async #dropOrphans(before: number): Promise<void> {
    for await (const { uuid, modifiedAt } of this.bytes.list()) {
      if (modifiedAt < before && !(await this.metadata.uploads.get(uuid))) await this.bytes.delete(uuid);
    }
  }

  /**
   * Start-up repair of what a crash left between the steps of a finish: a session whose bytes
   * were already moved into the blob store is linked (if the blob is there) and ended; a session
   * whose bytes are gone otherwise is ended (its client gets BLOB_UPLOAD_UNKNOWN and starts
   * again); bytes without a session are dropped once older than `startingGrace` (younger ones may
   * be another node's session being started: its bytes come before its row).
   */
  async repair(): Promise<void> {
    for (const row of await this.metadata.uploads.all()) {
      if ((await this.bytes.size(row.uuid)) !== null) continue;
      const blob = row.committing ? await this.metadata.blobs.get(row.committing) : undefined;
      if (blob?.state === 'present') await this.lifecycle.linkExisting(row, blob.digest, blob.size);
      await this.metadata.uploads.remove(row.uuid);
    }
    await this.#dropOrphans(this.options.now() - startingGrace);
  }

  /** Hashes the session's bytes from `from` into `hash`. */
  async #rehash<H extends Hash | ThreadHash>(uuid: string, hash: H, from = 0): Promise<H> {
    const update = hash instanceof ThreadHash ? (chunk: Buffer) => hash.update([chunk]) : (chunk: Buffer) => hash.update(chunk);
    await hashStream(await this.bytes.read(uuid, from), update);
    return hash;
  }

  /** The session's sha256; read again from its stored bytes if the hashing thread died holding it. */
  async #sha256(uuid: string, session: LiveSession): Promise<string> {
    try {
      return await session.hash.digest();
    } catch (error) {
      if (!session.hash.lost) throw error;
      return (await this.#rehash(uuid, newHasher('sha256'))).digest('hex');
    }
  }

  async #end(uuid: string): Promise<void> {
    this.#live.delete(uuid);
    await this.metadata.uploads.remove(uuid);
    await this.bytes.delete(uuid);
  }

  /** BLOB_UPLOAD_UNKNOWN unless the session is in progress for `owner`. */
  async #requireOwner(owner: ImageRef, uuid: string): Promise<void> {
    const row = await this.metadata.uploads.get(uuid);
    if (!row || row.repo !== owner.repo || row.name !== owner.name) throw unknown(uuid, owner);
  }

  async #session(owner: ImageRef, uuid: string): Promise<LiveSession> {
    await this.#requireOwner(owner, uuid);
    const stored = await this.bytes.size(uuid);
    if (stored === null) {
      // The bytes are gone (a crash between the steps of a finish): the session cannot go on.
      this.#live.delete(uuid);
      await this.metadata.uploads.remove(uuid);
      throw unknown(uuid, owner);
    }
    // A hash lost with the hashing thread is rebuilt from the stored bytes, as on first sight.
    let session = this.#live.get(uuid);
    if (session?.hash.lost) session = undefined;
    if (session && session.size === stored) return session;
    // Another process appended since this one last saw the session: hash what it added. First
    // sight of it here: rebuild the hash from the start.
    const known = session && session.size < stored ? session : { hash: ThreadHash.create(), size: 0 };
    session = { hash: await this.#rehash(uuid, known.hash.copy(), known.size), size: stored };
    this.#live.set(uuid, session);
    return session;
  }
}
