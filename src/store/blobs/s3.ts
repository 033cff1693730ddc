import { mkdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { parseDigest, type ParsedDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { outage, StorageConnectError, type Cause } from '../errors.js';
import { diskHealth, removeQuietly } from './files.js';
import { idleGuard, isMissing, sliceStream, uploadStream } from './s3-objects.js';
import { S3Sessions } from './s3-sessions.js';
import { readSpool, SpoolWriter } from './spool.js';
import type { BlobDriver, ByteRange, StoredBlob, WriterOptions } from './types.js';

// Blobs in any S3-compatible object store (AWS S3, Ceph RGW, MinIO, R2), through the AWS SDK v3:
//
//   <prefix>/blobs/<alg>/<xx>/<hex>        one immutable object per digest (content-addressed)
//   <prefix>/uploads/<uuid>/.session       an upload session exists
//   <prefix>/uploads/<uuid>/<offset>       its chunks, one object per PATCH (durable in S3, so any
//                                          node can continue the session)
//
// An object appears under a blob key only once its bytes are verified: writes are spooled to a
// local temp file while hashed (readers following a cache fill read it back), then uploaded
// (multipart above 16 MiB); a finished session is copied (CopyObject) or streamed into place.
// Nothing relies on conditional PUT. Credentials are never logged.

export interface S3Options {
  endpoint: string | null;
  region: string;
  bucket: string;
  /** Key prefix, without leading or trailing slash ('' for the bucket root). */
  prefix: string;
  accessKeyId: string | null;
  secretAccessKey: string | null;
  forcePathStyle: boolean;
  /** Answer blob GETs with a redirect to a presigned URL. */
  redirect: boolean;
  /** Connecting, and waiting for the store's answer to a request or for the next bytes of a body it sends (ms); the SDK retries twice more. */
  timeouts: { connect: number; response: number };
}

interface OpenOptions extends S3Options {
  tmpDir: string;
  /** Where an outage is reported (once when the store goes, once when it is back). */
  log?: (message: string) => void;
}

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Why a request failed if the store is out of reach or failing (after the SDK's retries); null for an answer about the request. */
function outOfReach(error: unknown): Cause | null {
  const { name, code, $metadata } = (error ?? {}) as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = $metadata?.httpStatusCode;
  if (status !== undefined) return [500, 502, 503, 504].includes(status) ? { code: `HTTP ${status}`, text: `HTTP ${status}` } : null;
  if (name === 'TimeoutError') return stalled;
  return code && networkCodes.has(code) ? { code, text: code } : null;
}

const stalled: Cause = { code: 'ETIMEDOUT', text: 'no answer within storage.blobs.timeouts' };

/** Presigned blob URLs stay valid this long (a client starts its GET at once). */
const presignSeconds = 15 * 60;


export class S3Blobs implements BlobDriver {
  readonly name = 's3';
  readonly sessions: S3Sessions;
  readonly #client: S3Client;
  readonly #options: S3Options;
  readonly #tmp: string;
  /** A store out of reach answers 503 (UNAVAILABLE), not an internal error; logged once when it goes, once when it is back. */
  readonly #watch: ReturnType<typeof outage>;

  private constructor(options: OpenOptions) {
    this.#options = options;
    this.#tmp = options.tmpDir;
    this.#watch = outage('the object store', options.log ?? (() => undefined));
    this.#client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.accessKeyId && options.secretAccessKey ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
      requestHandler: { connectionTimeout: options.timeouts.connect, requestTimeout: options.timeouts.response, throwOnRequestTimeout: true },
      // S3-compatible stores do not all know the SDK's newer default checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.sessions = new S3Sessions({
      client: this.#client,
      bucket: options.bucket,
      prefix: this.#key('uploads/'),
      blobKey: (digest) => this.#blobKey(digest),
      blobExists: async (digest) => (await this.stat(`${digest.algorithm}:${digest.hex}`)) !== null,
      guard: (body) => this.#guard(body),
    });
  }

  /** Creates the driver and checks that the bucket answers. */
  static async open(options: OpenOptions): Promise<S3Blobs> {
    const driver = new S3Blobs(options);
    try {
      await driver.#client.send(new HeadBucketCommand({ Bucket: options.bucket }));
    } catch (error) {
      driver.#client.destroy();
      const server = `s3 at ${options.endpoint ?? `AWS ${options.region}`}`;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) throw new StorageConnectError('blobs', server, `bucket ${options.bucket} does not exist`, 'bucket');
      if (status === 403 || (error as Error).name === 'CredentialsProviderError') {
        throw new StorageConnectError('blobs', server, `access to bucket ${options.bucket} denied (${status ? `HTTP ${status}` : 'no credentials'}): check the credentials and the bucket's policy`, 'credentials');
      }
      throw new StorageConnectError('blobs', server, outOfReach(error)?.text ?? (status ? `HTTP ${status}` : ((error as { code?: string }).code ?? (error as Error).name)));
    }
    // From here on, a store out of reach answers 503 (UNAVAILABLE), not an internal error.
    driver.#client.middlewareStack.add((next) => async (args) => {
      try {
        const result = await next(args);
        driver.#watch.answered();
        return result;
      } catch (error) {
        const cause = outOfReach(error);
        throw cause ? driver.#watch.failed(cause) : error;
      }
    }, { step: 'initialize', name: 'wharfOutage' });
    return driver;
  }

  /** An object's body, failed when the store stops sending it (the SDK times only the answer's headers). */
  #guard(body: Readable): Readable {
    return idleGuard(body, this.#options.timeouts.response, () => this.#watch.failed(stalled));
  }

  #key(path: string): string {
    return this.#options.prefix ? `${this.#options.prefix}/${path}` : path;
  }

  #blobKey(digest: string | ParsedDigest): string {
    const parsed = typeof digest === 'string' ? parseDigest(digest) : digest;
    if (!parsed) throw new RegistryError('BLOB_UNKNOWN', { detail: { digest } });
    return this.#key(`blobs/${parsed.algorithm}/${parsed.hex.slice(0, 2)}/${parsed.hex}`);
  }

  async stat(digest: string): Promise<StoredBlob | null> {
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: this.#blobKey(digest) }));
      return { digest, size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() ?? 0 };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const missing = () => new RegistryError('BLOB_UNKNOWN', { message: `blob ${digest} is not in the store`, detail: { digest } });
    if (range && range.end < range.start) {
      if (!(await this.stat(digest))) throw missing();
      return Readable.from([]);
    }
    try {
      const answer = await this.#client.send(new GetObjectCommand({
        Bucket: this.#options.bucket,
        Key: this.#blobKey(digest),
        ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }));
      const body = this.#guard(answer.Body as Readable);
      if (!range) return body;
      // HTTP lets a server answer more than the range asked (200 with the whole object, or a
      // wider 206): cut out exactly the bytes asked for.
      const sent = /^bytes (\d+)-(\d+)\//.exec(answer.ContentRange ?? '');
      const sentStart = sent ? Number(sent[1]) : 0;
      const sentEnd = sent ? Number(sent[2]) : (answer.ContentLength ?? 0) - 1;
      if (sentStart === range.start && sentEnd === range.end) return body;
      return sliceStream(body, range.start - sentStart, range.end - range.start + 1);
    } catch (error) {
      if (isMissing(error)) throw missing();
      throw error;
    }
  }

  readWriting(id: string, position: number, length: number): Promise<Buffer | null> {
    return readSpool(this.#tmp, id, position, length);
  }

  writer(options: WriterOptions = {}): SpoolWriter {
    return new SpoolWriter(this.#tmp, async (file, digest) => {
      if (await this.stat(`${digest.algorithm}:${digest.hex}`)) return;
      await uploadStream(this.#client, { Bucket: this.#options.bucket, Key: this.#blobKey(digest) }, createReadStream(file, { highWaterMark: 1 << 20 }), new PassThrough());
    }, options);
  }

  async delete(digest: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: this.#blobKey(digest) }));
  }

  async *list(): AsyncIterable<StoredBlob> {
    const prefix = this.#key('blobs/');
    let token: string | undefined;
    do {
      const page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const [algorithm, , hex] = (object.Key ?? '').slice(prefix.length).split('/');
        const digest = `${algorithm}:${hex}`;
        if (parseDigest(digest)) yield { digest, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async redirect(digest: string): Promise<string | null> {
    if (!this.#options.redirect) return null;
    return getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.#options.bucket, Key: this.#blobKey(digest) }), { expiresIn: presignSeconds });
  }

  async prepare({ recover }: { recover: boolean }): Promise<void> {
    if (recover) await removeQuietly(this.#tmp);
    await mkdir(this.#tmp, { recursive: true });
  }

  async health(): Promise<{ writable: boolean; reason?: string }> {
    // Blobs are spooled on the local disk before they are uploaded: it must have room too.
    const spool = await diskHealth(this.#tmp, this.#tmp);
    if (!spool.writable) return spool;
    const probe = this.#key('.probe');
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#options.bucket, Key: probe, Body: 'ok', ContentLength: 2 }));
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: probe }));
      return { writable: true };
    } catch (error) {
      if (error instanceof RegistryError) return { writable: false, reason: error.message };
      const name = (error as Error).name;
      return { writable: false, reason: /Quota|StorageFull/.test(name) ? 'storage is full' : `the object store refused a write (${name})` };
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}
