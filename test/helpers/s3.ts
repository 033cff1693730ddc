import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, waitForPort } from './ports.js';
import { tempDir } from './server.js';
import { killWhenGone } from './watchdog.js';

// npm's s3rver, an S3-compatible server, as a child process on a free loopback port with a temp
// directory; one per test process, a fresh bucket per caller. Credentials: S3RVER/S3RVER.

export interface S3Settings {
  driver: 's3';
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  redirect: boolean;
}

let server: Promise<{ endpoint: string; child: ChildProcess }> | null = null;

async function start(): Promise<{ endpoint: string; child: ChildProcess }> {
  const dir = await tempDir('wharf-s3rver-');
  const port = await freePort();
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const child = spawn(process.execPath, [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent'], { stdio: 'ignore' });
  child.unref();
  killWhenGone(child, dir);
  await waitForPort(port, child);
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Storage settings for a fresh, empty bucket on this process's s3rver. */
export async function s3Storage(options: { redirect?: boolean; prefix?: string } = {}): Promise<S3Settings> {
  server ??= start();
  const { endpoint } = await server;
  const bucket = `wharf-${randomBytes(6).toString('hex')}`;
  const client = s3Client(endpoint);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    driver: 's3', endpoint, region: 'us-east-1', bucket, prefix: options.prefix ?? 'registry',
    accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true, redirect: options.redirect ?? false,
  };
}

/** Settings as the store takes them, for tests that open it without a config (timeouts in ms, the defaults). */
export function s3Options(settings: S3Settings): S3Settings & { timeouts: { connect: number; response: number } } {
  return { ...settings, timeouts: { connect: 10_000, response: 60_000 } };
}

/** Every object key in the bucket (below the prefix). */
export async function s3Keys(settings: S3Settings): Promise<string[]> {
  const client = s3Client(settings.endpoint);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: settings.prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  return keys;
}

/** Puts an object at `path` below the prefix. */
export async function s3Put(settings: S3Settings, path: string, body: Buffer): Promise<void> {
  const client = s3Client(settings.endpoint);
  await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: settings.prefix ? `${settings.prefix}/${path}` : path, Body: body }));
  client.destroy();
}
