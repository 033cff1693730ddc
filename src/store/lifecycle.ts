import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';
import type { ParsedDigest } from '../oci/digest.js';
import { pour } from './blobs/pour.js';
import type { BlobDriver, WrittenBlob } from './blobs/types.js';
import { storageFailure } from './full.js';
import type { ImageRef, ManifestPut, Metadata } from './metadata/types.js';

// One owner of a blob's life. Bytes become part of an image in one step, `commit`:
//   1. claim the digest's row (absent → inserted `present`; present → touched), so that the
//      collector leaves it alone for its grace period; if a running collector holds it
//      (`deleting`), wait until it has finished, then claim it afresh; a mark whose collector no
//      longer holds the lease (failed, killed) is taken back at once;
//   2. place the bytes (the driver keeps the copy already there, if any: same content);
//   3. link the blob into the image, touching its row again, in one transaction.
// Eviction and deletion only remove links. The collector alone deletes bytes, and only of rows
// it marked `deleting` (present, linked nowhere, referenced by no manifest, untouched for the
// grace period), re-checked in the marking statement.

/** How long a commit waits for a running collector to finish with a digest it is deleting. */
const deletingWaitMs = 30_000;

export interface LifecycleHooks {
  /** Runs between claim and link, before the bytes are placed (tests force interleavings here). */
  afterClaim?: (digest: string) => Promise<void>;
  /** Runs between placing the bytes and linking them (a finished upload's session bytes are gone then). */
  afterPlace?: (digest: string) => Promise<void>;
  /** Runs before a manifest or blob is unlinked from an image by a DELETE. */
  beforeUnlink?: (digest: string) => Promise<void>;
  /** Runs before a pushed manifest (and its tag) is written. */
  beforePush?: (digest: string) => Promise<void>;
}

export class BlobLifecycle {
  constructor(
    private readonly metadata: Metadata,
    private readonly driver: BlobDriver,
    private readonly options: { now: () => number; hooks: LifecycleHooks; log: (message: string) => void },
  ) {}

  /** Places verified bytes (`place`) as the blob `digest` and links it into `image`. */
  async commit(image: ImageRef, digest: string, size: number, place: () => Promise<void>): Promise<WrittenBlob> {
    const deadline = Date.now() + deletingWaitMs;
    while ((await this.metadata.blobs.claim(digest, size, this.options.now())) === 'deleting') {
      if (Date.now() > deadline) throw new RegistryError('UNKNOWN', { status: 503, message: `blob ${digest} is being garbage-collected; retry the push` });
      await sleep(20);
    }
    await this.options.hooks.afterClaim?.(digest);
    await place().catch((error: unknown) => { throw storageFailure(error, this.options.log); });
    await this.options.hooks.afterPlace?.(digest);
    if (!(await this.metadata.blobs.link(image, digest, size, this.options.now()))) {
      // Only a stall longer than the grace period between claim and link gets here.
      throw new RegistryError('UNKNOWN', { status: 503, message: `blob ${digest} was garbage-collected while it was being linked; retry the push` });
    }
    return { digest, size };
  }

  /** Streams `body` into the store, verifies it against `expected` and links it into `image`. */
  async write(image: ImageRef, body: Readable, expected: ParsedDigest): Promise<WrittenBlob> {
    const writer = this.driver.writer({ algorithm: expected.algorithm });
    try {
      await pour(body, writer);
    } catch (error) {
      await writer.cancel();
      throw storageFailure(error, this.options.log);
    }
    const digest = `${expected.algorithm}:${expected.hex}`;
    if (writer.digest() !== digest) {
      await writer.cancel();
      throw new RegistryError('DIGEST_INVALID', { message: `content has digest ${writer.digest()}, not ${digest}`, detail: { digest: writer.digest() } });
    }
    try {
      return await this.commit(image, digest, writer.bytes, async () => { await writer.commit(expected); });
    } finally {
      await writer.cancel();
    }
  }

  /**
   * A DELETE of a manifest or blob of `image`: unlinks it unless a tagged manifest of the image
   * still needs it (409 DENIED), checked in the unlinking transaction.
   */
  async unlink(image: ImageRef, kind: 'manifest' | 'blob', digest: string): Promise<boolean> {
    await this.options.hooks.beforeUnlink?.(digest);
    return (kind === 'manifest' ? this.metadata.manifests : this.metadata.blobLinks).unlink(image, digest, { keepWhileTagged: true });
  }

  /** A local push of a manifest and its tag, in one transaction (Manifests.push). */
  async pushManifest(put: ManifestPut): ReturnType<Metadata['manifests']['push']> {
    await this.options.hooks.beforePush?.(put.manifest.digest);
    return this.metadata.manifests.push(put);
  }

  /**
   * Links a blob the store already holds (a mount) when its bytes are there with `size`; false
   * when they are not (or the collector is deleting them).
   */
  async linkExisting(image: ImageRef, digest: string, size: number): Promise<boolean> {
    const stored = await this.driver.stat(digest);
    if (!stored || stored.size !== size) return false;
    return this.metadata.blobs.link(image, digest, size, this.options.now());
  }
}
