import { ConfigError } from './errors.js';
import { boolean, describe, duration, httpUrl, join, mapping, string, timeouts, timerDuration, type Node } from './fields.js';
import type { CollectorConfig, StorageConfig } from './types.js';

// Where bytes and metadata live, and the collector that frees what nothing uses:
//
//   storage:
//     blobs: { driver: filesystem }                 # default: <dataDir>/blobs
//     blobs: { driver: s3, endpoint, region, bucket, prefix, accessKeyId, secretAccessKey, forcePathStyle, redirect, timeouts }
//     metadata: { driver: sqlite }                  # default: <dataDir>/meta.db
//     metadata: { driver: postgres, url: postgres://user:${PGPASSWORD}@host:5432/wharf, timeouts }
//   gc: { interval: 1h, grace: 1h }
//   uploads: { expireAfter: 24h }

export const storageKeys = ['storage', 'gc', 'uploads'] as const;

const s3Keys = ['driver', 'endpoint', 'region', 'bucket', 'prefix', 'accessKeyId', 'secretAccessKey', 'forcePathStyle', 'redirect', 'timeouts'];

function blobs(value: unknown, path: string): StorageConfig['blobs'] {
  if (value === undefined) return { driver: 'filesystem' };
  const driver = (value as Node | null)?.driver ?? 'filesystem';
  if (driver === 'filesystem') {
    mapping(value, path, ['driver']);
    return { driver };
  }
  if (driver !== 's3') throw new ConfigError(join(path, 'driver'), `expected filesystem or s3, got ${describe(driver)}`);
  const node = mapping(value, path, s3Keys);
  const at = (key: string) => join(path, key);
  const optional = (key: string) => (node[key] === undefined ? null : string(node[key], at(key)));
  const bucket = string(node.bucket, at('bucket'));
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError(at('bucket'), `expected an S3 bucket name (3-63 lowercase letters, digits, dots and dashes), got ${describe(bucket)}`);
  const accessKeyId = optional('accessKeyId');
  const secretAccessKey = optional('secretAccessKey');
  if ((accessKeyId === null) !== (secretAccessKey === null)) throw new ConfigError(at(accessKeyId === null ? 'accessKeyId' : 'secretAccessKey'), 'accessKeyId and secretAccessKey go together (without both, the AWS SDK finds credentials itself: environment, instance role)');
  const endpoint = node.endpoint === undefined ? null : httpUrl(node.endpoint, at('endpoint'));
  const prefix = optional('prefix') ?? '';
  if (!/^([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/.test(prefix)) throw new ConfigError(at('prefix'), `expected a key prefix like registry or team/registry (no leading or trailing slash), got ${describe(prefix)}`);
  return {
    driver: 's3',
    endpoint,
    region: optional('region') ?? 'us-east-1',
    bucket,
    prefix,
    accessKeyId,
    secretAccessKey,
    // S3-compatible servers (MinIO, Ceph, s3rver) mostly want path-style URLs; AWS wants virtual hosts.
    forcePathStyle: node.forcePathStyle === undefined ? endpoint !== null : boolean(node.forcePathStyle, at('forcePathStyle')),
    redirect: node.redirect === undefined ? false : boolean(node.redirect, at('redirect')),
    timeouts: timeouts(node.timeouts, at('timeouts')),
  };
}

function metadata(value: unknown, path: string): StorageConfig['metadata'] {
  if (value === undefined) return { driver: 'sqlite' };
  const driver = (value as Node | null)?.driver ?? 'sqlite';
  if (driver === 'sqlite') {
    mapping(value, path, ['driver']);
    return { driver };
  }
  if (driver !== 'postgres') throw new ConfigError(join(path, 'driver'), `expected sqlite or postgres, got ${describe(driver)}`);
  const node = mapping(value, path, ['driver', 'url', 'timeouts']);
  const url = string(node.url, join(path, 'url'));
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch { /* reported below */ }
  if (!parsed || !['postgres:', 'postgresql:'].includes(parsed.protocol)) {
    // The value may hold a password: it is not repeated.
    throw new ConfigError(join(path, 'url'), 'expected a URL like postgres://user:password@host:5432/database');
  }
  return { driver: 'postgres', url, timeouts: timeouts(node.timeouts, join(path, 'timeouts')) };
}

export function storageConfig(value: unknown): StorageConfig {
  const node = value === undefined ? {} : mapping(value, 'storage', ['blobs', 'metadata']);
  return { blobs: blobs(node.blobs, 'storage.blobs'), metadata: metadata(node.metadata, 'storage.metadata') };
}

export function collectorConfig(gc: unknown, uploads: unknown): CollectorConfig {
  const gcNode = gc === undefined ? {} : mapping(gc, 'gc', ['interval', 'grace']);
  const uploadsNode = uploads === undefined ? {} : mapping(uploads, 'uploads', ['expireAfter']);
  return {
    interval: gcNode.interval === undefined ? 3_600_000 : timerDuration(gcNode.interval, 'gc.interval'),
    grace: gcNode.grace === undefined ? 3_600_000 : duration(gcNode.grace, 'gc.grace'),
    uploadsExpireAfter: uploadsNode.expireAfter === undefined ? 86_400_000 : duration(uploadsNode.expireAfter, 'uploads.expireAfter'),
  };
}
