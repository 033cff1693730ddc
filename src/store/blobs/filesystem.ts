import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { parseDigest, type ParsedDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { commitFile, diskHealth, removeQuietly, syncPath } from './files.js';
import { BufferPool, FileBody, openFile } from './file-body.js';
import { FilesystemSessions } from './fs-sessions.js';
import { readSpool, SpoolWriter } from './spool.js';
import type { BlobDriver, ByteRange, StoredBlob, WriterOptions } from './types.js';

// The data directory's bytes:
//
//   <dataDir>/
//     blobs/<alg>/<xx>/<hex>   one file per blob digest, shared by every repository (xx = hex[0..2])
//     uploads/<uuid>           bytes of an upload session so far; resumable across restarts
//     tmp/                     files being written; emptied at start-up, never read by name
//
// Every name below dataDir is built from a validated digest or a UUID we generated, never from
// a client's path, so no request can reach outside this tree. A blob file appears only by
// rename of a complete, synced, verified temp file.

function missing(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in the store`, detail: { digest } });
}

export class FilesystemBlobs implements BlobDriver {
  readonly name = 'filesystem';
  readonly sessions: FilesystemSessions;
  readonly #root: string;
  readonly #tmp: string;
  readonly #blobs: string;
  /** Idle read buffers of the bodies this driver serves (16 MiB at most). */
  readonly #buffers = new BufferPool({ maxIdle: 16, maxLent: 64 });

  constructor(root: string) {
    this.#root = root;
    this.#tmp = join(root, 'tmp');
    this.#blobs = join(root, 'blobs');
    this.sessions = new FilesystemSessions({ dir: join(root, 'uploads'), place: (file, digest) => this.#place(file, digest) });
  }

  #path(digest: string | ParsedDigest): string {
    const parsed = typeof digest === 'string' ? parseDigest(digest) : digest;
    if (!parsed) throw missing(String(digest));
    return join(this.#blobs, parsed.algorithm, parsed.hex.slice(0, 2), parsed.hex);
  }

  async stat(digest: string): Promise<StoredBlob | null> {
    try {
      const info = await stat(this.#path(digest));
      return { digest, size: info.size, modifiedAt: info.mtimeMs };
    } catch {
      return null;
    }
  }

  /**
   * A FileBody of the blob (or range): a Readable that can also send itself into a response
   * through reused buffers (file-body.ts).
   */
  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const path = this.#path(digest);
    if (range && range.end < range.start) {
      if (!(await this.stat(digest))) throw missing(digest);
      return Readable.from([]);
    }
    const { fd, size } = await openFile(path).catch(() => { throw missing(digest); });
    const start = range?.start ?? 0;
    const end = range ? Math.min(range.end + 1, size) : size;
    return new FileBody({ fd, start, end, pool: this.#buffers, blobPath: relative(this.#blobs, path) });
  }

  writer(options: WriterOptions = {}): SpoolWriter {
    return new SpoolWriter(this.#tmp, (file, digest) => this.#place(file, digest), options);
  }

  readWriting(id: string, position: number, length: number): Promise<Buffer | null> {
    return readSpool(this.#tmp, id, position, length);
  }

  /** Moves a verified file into place; if the blob exists already (same bytes) the file is dropped. */
  async #place(file: string, digest: ParsedDigest): Promise<void> {
    const target = this.#path(digest);
    if (await this.stat(`${digest.algorithm}:${digest.hex}`)) return removeQuietly(file);
    await syncPath(file);
    await commitFile(file, target);
  }

  async delete(digest: string): Promise<void> {
    await unlink(this.#path(digest)).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'ENOENT') throw error; });
  }

  async *list(): AsyncIterable<StoredBlob> {
    for (const algorithm of await readdir(this.#blobs).catch(() => [])) {
      for (const prefix of await readdir(join(this.#blobs, algorithm)).catch(() => [])) {
        for (const hex of await readdir(join(this.#blobs, algorithm, prefix)).catch(() => [])) {
          const digest = `${algorithm}:${hex}`;
          if (!parseDigest(digest)) continue;
          const found = await this.stat(digest);
          if (found) yield found;
        }
      }
    }
  }

  async prepare({ recover }: { recover: boolean }): Promise<void> {
    await mkdir(this.#blobs, { recursive: true });
    // tmp/ holds only writes in progress: left-overs of an interrupted run are never complete.
    if (recover) await removeQuietly(this.#tmp);
    await mkdir(this.#tmp, { recursive: true });
    await this.sessions.prepare();
  }

  health(): Promise<{ writable: boolean; reason?: string }> {
    return diskHealth(this.#root, this.#tmp);
  }

  async close(): Promise<void> {}
}
