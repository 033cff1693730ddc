import { randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RegistryError } from '../../oci/errors.js';
import { newHasher, type ParsedDigest } from '../../oci/digest.js';
import { removeQuietly } from './files.js';
import { HashingFileWriter } from './hashing.js';
import type { BlobWriter, WriterOptions, WrittenBlob } from './types.js';

const spoolId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Bytes already written to the spool file `id` in `tmpDir` (a writer of this or another process),
 * or null once the file is gone (committed or cancelled).
 */
export async function readSpool(tmpDir: string, id: string, position: number, length: number): Promise<Buffer | null> {
  if (!spoolId.test(id)) throw new Error(`not a spool file name: ${JSON.stringify(id)}`);
  const handle = await open(join(tmpDir, id), 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (!handle) return null;
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.allocUnsafe(length), 0, length, position);
    return bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Moves a verified spool file into the driver's storage under its digest. */
export type Place = (file: string, digest: ParsedDigest, size: number) => Promise<void>;

/**
 * A BlobWriter over a temp file in the driver's tmp/ directory: hashed while written, verified,
 * then handed to `place` (a rename on the filesystem, an upload to S3). The temp file is removed
 * whatever happens; readers that follow the write read it back until then.
 */
export class SpoolWriter extends HashingFileWriter implements BlobWriter {
  readonly #file: string;
  readonly #algorithm;
  readonly #hash;
  readonly #place: Place;
  #digest: string | null = null;

  constructor(tmpDir: string, place: Place, options: WriterOptions = {}) {
    const algorithm = options.algorithm ?? 'sha256';
    const hash = newHasher(algorithm);
    const file = join(tmpDir, randomUUID());
    super(file, { hash, ...(options.onWritten ? { onWritten: options.onWritten } : {}) });
    this.#file = file;
    this.#algorithm = algorithm;
    this.#hash = hash;
    this.#place = place;
  }

  digest(): string {
    this.#digest ??= `${this.#algorithm}:${this.#hash.digest('hex')}`;
    return this.#digest;
  }

  /** The name another process reads this write by while it is in progress (readSpool). */
  get id(): string {
    return basename(this.#file);
  }

  readWritten(position: number, length: number): Promise<Buffer | null> {
    return readSpool(dirname(this.#file), this.id, position, length);
  }

  async commit(expected: ParsedDigest): Promise<WrittenBlob> {
    try {
      // The digest is of the bytes accepted, the file holds those written: only a writer that
      // finished without error has written all it accepted.
      if (this.errored || !this.writableFinished) throw this.errored ?? new Error('the blob writer has not finished');
      const digest = this.digest();
      if (digest !== `${expected.algorithm}:${expected.hex}`) {
        throw new RegistryError('DIGEST_INVALID', { message: `content has digest ${digest}, not ${expected.algorithm}:${expected.hex}`, detail: { digest } });
      }
      await this.#place(this.#file, expected, this.bytes);
      return { digest, size: this.bytes };
    } finally {
      await removeQuietly(this.#file);
    }
  }

  async cancel(): Promise<void> {
    this.destroy();
    await removeQuietly(this.#file);
  }
}
