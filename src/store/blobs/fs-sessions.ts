import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../../oci/digest.js';
import { removeQuietly } from './files.js';
import { mayMoveChunks } from './hash-thread.js';
import { HashingFileWriter, readChunkBytes, sessionWriteBatchBytes } from './hashing.js';
import { pour } from './pour.js';
import { wrongChunkLength, type AppendOptions, type SessionBytes, type SessionHash } from './types.js';
import { sessionWritebackBytes, Writeback } from './writeback.js';

/**
 * Upload sessions as files, uploads/<uuid>: each chunk is appended at the session's end; a chunk
 * that fails midway is cut off again, so a session always holds whole chunks.
 */
export class FilesystemSessions implements SessionBytes {
  readonly #dir: string;
  readonly #place: (file: string, digest: ParsedDigest) => Promise<void>;
  readonly #writeback: Writeback;

  constructor(options: { dir: string; place: (file: string, digest: ParsedDigest) => Promise<void>; writeback?: Writeback }) {
    this.#dir = options.dir;
    this.#place = options.place;
    this.#writeback = options.writeback ?? new Writeback({ everyBytes: sessionWritebackBytes });
  }

  #path(uuid: string): string {
    return join(this.#dir, uuid);
  }

  async prepare(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
  }

  async create(uuid: string): Promise<void> {
    await writeFile(this.#path(uuid), '');
  }

  async size(uuid: string): Promise<number | null> {
    try {
      return (await stat(this.#path(uuid))).size;
    } catch {
      return null;
    }
  }

  async append(uuid: string, offset: number, body: Readable, hash: SessionHash, options: AppendOptions = {}): Promise<number> {
    const path = this.#path(uuid);
    const moves = mayMoveChunks(body);
    const writer = new HashingFileWriter(path, {
      handTo: (written) => hash.update(written, moves), flags: 'r+', start: offset, batchBytes: sessionWriteBatchBytes,
      onWritten: (bytes, batchBytes) => this.#writeback.written(path, offset + bytes - batchBytes, offset + bytes),
    });
    try {
      // Counted by the writer, not by a stream in between: a Transform on a request body costs
      // a push more than the writing itself (GC; measured in the chunked push bench).
      await pour(body, writer);
      if (options.length !== undefined && writer.bytes !== options.length) throw wrongChunkLength(options.length, writer.bytes);
      return offset + writer.bytes;
    } catch (error) {
      await truncate(this.#path(uuid), offset).catch(() => undefined);
      throw error;
    }
  }

  settle(uuid: string): Promise<void> {
    return this.#writeback.idle(this.#path(uuid));
  }

  async read(uuid: string, from = 0): Promise<Readable> {
    return createReadStream(this.#path(uuid), { highWaterMark: readChunkBytes, start: from });
  }

  async commit(uuid: string, digest: ParsedDigest): Promise<void> {
    await this.#place(this.#path(uuid), digest);
  }

  async delete(uuid: string): Promise<void> {
    await removeQuietly(this.#path(uuid));
  }

  async *list(): AsyncIterable<{ uuid: string; modifiedAt: number }> {
    for (const uuid of await readdir(this.#dir).catch(() => [])) {
      const info = await stat(this.#path(uuid)).catch(() => null);
      if (info) yield { uuid, modifiedAt: info.mtimeMs };
    }
  }

  async abortAbandoned(): Promise<number> {
    return 0;
  }
}
