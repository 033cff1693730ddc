import { PassThrough, Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import type { ParsedDigest } from '../../oci/digest.js';
import { isMissing, uploadStream } from './s3-objects.js';
import { wrongChunkLength, type AppendOptions, type SessionBytes, type SessionHash } from './types.js';

// Upload sessions in S3: <uploads>/<uuid>/.session marks the session; every PATCH becomes one
// object <uploads>/<uuid>/<offset> (16 digits), uploaded as it streams in (multipart for large
// chunks) and visible only once complete, so a session is always whole chunks and any node can
// continue it. Finishing copies a single chunk into place (CopyObject, up to 5 GiB) or streams
// the chunks in order into one multipart upload of the blob key, then deletes the session.

/** CopyObject's limit; above it the chunks are streamed. */
const maxCopyBytes = 5 * 1024 ** 3;

interface Chunk {
  key: string;
  offset: number;
  size: number;
  modifiedAt: number;
}

export class S3Sessions implements SessionBytes {
  constructor(private readonly options: {
    client: S3Client;
    bucket: string;
    /** "<prefix>/uploads/" */
    prefix: string;
    blobKey: (digest: ParsedDigest) => string;
    blobExists: (digest: ParsedDigest) => Promise<boolean>;
    /** A chunk's body as read from the store, failed if the store stops sending it. */
    guard: (body: Readable) => Readable;
  }) {}

  #dir(uuid: string): string {
    return `${this.options.prefix}${uuid}/`;
  }

  async #objects(prefix: string): Promise<Chunk[]> {
    const found: Chunk[] = [];
    let token: string | undefined;
    do {
      const page = await this.options.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const name = (object.Key ?? '').slice(prefix.length);
        found.push({ key: object.Key!, offset: /^\d{16}$/.test(name) ? Number(name) : -1, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  /** The session's chunks in order, or null when the session is gone. */
  async #chunks(uuid: string): Promise<Chunk[] | null> {
    const objects = await this.#objects(this.#dir(uuid));
    if (!objects.some((object) => object.key.endsWith('/.session'))) return null;
    return objects.filter((object) => object.offset >= 0).sort((a, b) => a.offset - b.offset);
  }

  async create(uuid: string): Promise<void> {
    await this.options.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: `${this.#dir(uuid)}.session`, Body: '', ContentLength: 0 }));
  }

  async size(uuid: string): Promise<number | null> {
    const chunks = await this.#chunks(uuid);
    return chunks && chunks.reduce((total, chunk) => total + chunk.size, 0);
  }

  async append(uuid: string, offset: number, body: Readable, hash: SessionHash, options: AppendOptions = {}): Promise<number> {
    let size = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        const handedOver = hash.update([chunk]);
        if (handedOver) handedOver.then(() => callback(null, chunk), callback);
        else callback(null, chunk);
      },
      // A wrong length fails the object's upload: nothing of the chunk appears.
      flush(callback) {
        callback(options.length === undefined || size === options.length ? null : wrongChunkLength(options.length, size));
      },
    });
    const key = `${this.#dir(uuid)}${String(offset).padStart(16, '0')}`;
    await uploadStream(this.options.client, { Bucket: this.options.bucket, Key: key }, body, hashing);
    return offset + size;
  }

  async read(uuid: string, from = 0): Promise<Readable> {
    // Chunks are objects named by their offset: a read from `from` skips the ones wholly before it.
    const chunks = ((await this.#chunks(uuid)) ?? []).filter((chunk) => chunk.offset + chunk.size > from);
    const { client, bucket, guard } = this.options;
    return Readable.from((async function* () {
      for (const chunk of chunks) {
        const skip = Math.max(0, from - chunk.offset);
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: chunk.key, ...(skip > 0 ? { Range: `bytes=${skip}-` } : {}) }));
        yield* guard(answer.Body as Readable);
      }
    })());
  }

  async commit(uuid: string, digest: ParsedDigest): Promise<void> {
    if (!(await this.options.blobExists(digest))) {
      const chunks = (await this.#chunks(uuid)) ?? [];
      const target = this.options.blobKey(digest);
      const total = chunks.reduce((sum, chunk) => sum + chunk.size, 0);
      if (chunks.length === 1 && total <= maxCopyBytes) {
        await this.options.client.send(new CopyObjectCommand({ Bucket: this.options.bucket, Key: target, CopySource: `${this.options.bucket}/${encodeURI(chunks[0]!.key)}` }));
      } else if (total === 0) {
        await this.options.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: target, Body: '', ContentLength: 0 }));
      } else {
        await uploadStream(this.options.client, { Bucket: this.options.bucket, Key: target }, await this.read(uuid), new PassThrough());
      }
    }
    await this.delete(uuid);
  }

  async delete(uuid: string): Promise<void> {
    const objects = await this.#objects(this.#dir(uuid));
    for (let i = 0; i < objects.length; i += 1000) {
      await this.options.client.send(new DeleteObjectsCommand({
        Bucket: this.options.bucket,
        Delete: { Objects: objects.slice(i, i + 1000).map((object) => ({ Key: object.key })), Quiet: true },
      }));
    }
  }

  async *list(): AsyncIterable<{ uuid: string; modifiedAt: number }> {
    const latest = new Map<string, number>();
    for (const object of await this.#objects(this.options.prefix)) {
      const uuid = object.key.slice(this.options.prefix.length).split('/')[0]!;
      latest.set(uuid, Math.max(latest.get(uuid) ?? 0, object.modifiedAt));
    }
    for (const [uuid, modifiedAt] of latest) yield { uuid, modifiedAt };
  }

  /** Aborts multipart uploads under the store's prefix started before `before` (a chunk or blob whose writer died). */
  async abortAbandoned(before: number): Promise<number> {
    const prefix = this.options.prefix.replace(/uploads\/$/, '');
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.options.client.send(new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (error) {
        // Some S3-compatible servers do not list multipart uploads: nothing to do there.
        if ((error as Error).name === 'NotImplemented' || isMissing(error)) return aborted;
        throw error;
      }
      for (const upload of page.Uploads ?? []) {
        if ((upload.Initiated?.getTime() ?? 0) >= before) continue;
        await this.options.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: upload.Key, UploadId: upload.UploadId }));
        aborted++;
      }
      [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker);
    return aborted;
  }
}
