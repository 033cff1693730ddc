import { Readable, Transform } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pour } from './pour.js';
import { systemTimer, type SetTimer } from '../../timers.js';

// What the S3 driver's blobs and sessions share.

/** Multipart part size: large enough for few requests, small enough to bound memory (two in flight). */
export const partBytes = 16 << 20;

export function isMissing(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return name === 'NotFound' || name === 'NoSuchKey' || status === 404;
}

/**
 * Streams `source` through `through` into an object (multipart above one part). If the source
 * fails, the upload is aborted: nothing appears under the key.
 */
export async function uploadStream(client: S3Client, target: { Bucket: string; Key: string }, source: Readable, through: Transform): Promise<void> {
  const upload = new Upload({ client, params: { ...target, Body: through }, partSize: partBytes, queueSize: 2 });
  const done = upload.done();
  try {
    await pour(source, through);
    await done;
  } catch (error) {
    await upload.abort().catch(() => undefined);
    await done.catch(() => undefined);
    throw error;
  }
}

/** The `length` bytes of `source` after the first `skip`; the rest of the source is dropped. */
export function sliceStream(source: Readable, skip: number, length: number): Readable {
  let position = 0;
  const end = skip + length;
  const slice = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (position >= end) return callback();
      const from = Math.max(0, skip - position);
      const to = Math.min(chunk.length, end - position);
      position += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      callback();
      if (position >= end) {
        this.push(null);
        source.unpipe(slice);
        source.destroy();
      }
    },
  });
  source.on('error', (error) => slice.destroy(error));
  return source.pipe(slice);
}

/**
 * `body` (an object's bytes from the store), failed with `onIdle()` when the store sends nothing
 * for `ms` while more is wanted. The clock runs only while this stream waits for the store, never
 * while its reader is slow (a client whose socket is backed up stops the reads, and the clock).
 */
export function idleGuard(body: Readable, ms: number, onIdle: () => Error, setTimer: SetTimer = systemTimer): Readable {
  let cancel: (() => void) | null = null;
  const settle = () => {
    cancel?.();
    cancel = null;
  };
  const guarded = new Readable({
    read() {
      cancel ??= setTimer(ms, () => guarded.destroy(onIdle()));
      body.resume();
    },
    destroy(error, callback) {
      settle();
      body.destroy();
      callback(error);
    },
  });
  body.on('data', (chunk: Buffer) => {
    settle();
    if (!guarded.push(chunk)) body.pause();
  });
  body.pause();
  body.once('end', () => {
    settle();
    guarded.push(null);
  });
  body.on('error', (error) => guarded.destroy(error));
  return guarded;
}
