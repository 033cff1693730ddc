import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FilesystemBlobs } from './blobs/filesystem.js';
import type { BlobDriver } from './blobs/types.js';
import type { S3Options } from './blobs/s3.js';
import { BlobLifecycle, type LifecycleHooks } from './lifecycle.js';
import { openMetadata } from './metadata/index.js';
import type { Metadata } from './metadata/types.js';
import type { PostgresTimeouts } from './metadata/postgres.js';
import { databaseSessionLocks, localSessionLocks, type SessionLocks } from './session-locks.js';
import { UploadSessions } from './uploads.js';

export type { BlobDriver, BlobWriter, ByteRange, WrittenBlob } from './blobs/types.js';
export type { ImageRef, Metadata, Page } from './metadata/types.js';
export type { UploadState } from './uploads.js';
export type { SessionLocks };
export type { S3Options };

export interface StoreOptions {
  /** Local files: the SQLite database, the filesystem driver's blobs, temp files. */
  dataDir: string;
  blobs: { driver: 'filesystem' } | ({ driver: 's3' } & S3Options);
  metadata: { driver: 'sqlite' } | { driver: 'postgres'; url: string; timeouts?: PostgresTimeouts };
  /** Start-up of a server: drop half-written temp files, repair interrupted upload finishes. Not for a side process (wharf gc). */
  recover: boolean;
  /** The time (ms); tests inject one to move past grace periods. */
  now?: () => number;
  /** Operational messages (a full disk). */
  log?: (message: string) => void;
  hooks?: LifecycleHooks;
  /** PostgreSQL: connections this process opens at most (default 10). */
  connections?: number;
  /** Upload session locks shared by every process serving the store (default: this process's; on PostgreSQL, the database's). */
  sessionLocks?: SessionLocks;
}

/**
 * The storage layer: metadata (SQLite or PostgreSQL), bytes (filesystem or S3), the one
 * lifecycle that commits and links blobs, and upload sessions. Only store/ deletes bytes.
 */
export interface Store {
  readonly metadata: Metadata;
  readonly blobs: BlobDriver;
  readonly lifecycle: BlobLifecycle;
  readonly uploads: UploadSessions;
  now(): number;
  log(message: string): void;
  /** For readiness: can a push succeed now (storage writable, database reachable)? */
  health(): Promise<{ writable: boolean; reason?: string }>;
  close(): Promise<void>;
}

/** The SQLite metadata database of a data directory. */
export function metadataFile(dataDir: string): string {
  return join(dataDir, 'meta.db');
}

/** The data directory is for its owner and group only: it holds the database and the blobs. */
export const dataDirMode = 0o750;

async function makeDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: dataDirMode });
}

/** Opens the metadata database a storage configuration names (creating the data directory for SQLite). */
export async function openMetadataOf(options: Pick<StoreOptions, 'dataDir' | 'metadata' | 'log' | 'now' | 'connections'>): Promise<Metadata> {
  const extra = { ...(options.now ? { now: options.now } : {}), ...(options.log ? { log: options.log } : {}) };
  if (options.metadata.driver === 'postgres') {
    const { url, timeouts } = options.metadata;
    return openMetadata({ driver: 'postgres', url, ...extra, ...(timeouts ? { timeouts } : {}), ...(options.connections ? { poolSize: options.connections } : {}) });
  }
  await makeDataDir(options.dataDir);
  return openMetadata({ driver: 'sqlite', path: metadataFile(options.dataDir), ...extra });
}

/** Opens (creating if needed) the storage and, with `recover`, repairs what an interrupted run left. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const now = options.now ?? Date.now;
  const log = options.log ?? ((message: string) => console.error(`wharf: ${message}`));
  await makeDataDir(options.dataDir);
  // The S3 SDK (like pg and acme-client) is loaded only when configured: ~25 MiB of RSS otherwise.
  const blobs: BlobDriver = options.blobs.driver === 's3'
    ? await (await import('./blobs/s3.js')).S3Blobs.open({ ...options.blobs, tmpDir: join(options.dataDir, 'tmp'), log })
    : new FilesystemBlobs(options.dataDir);
  let metadata: Metadata;
  try {
    await blobs.prepare({ recover: options.recover });
    metadata = await openMetadataOf({ ...options, log, now });
  } catch (error) {
    await blobs.close();
    throw error;
  }
  const lifecycle = new BlobLifecycle(metadata, blobs, { now, hooks: options.hooks ?? {}, log });
  // On PostgreSQL other nodes may serve the same sessions: only the database's locks cover them all.
  const locks = options.metadata.driver === 'postgres' ? databaseSessionLocks(metadata.uploads, now) : (options.sessionLocks ?? localSessionLocks());
  const uploads = new UploadSessions(metadata, blobs.sessions, lifecycle, { now, log, locks });
  if (options.recover) await uploads.repair();
  return {
    metadata,
    blobs,
    lifecycle,
    uploads,
    now,
    log,
    async health() {
      try {
        await metadata.ping();
      } catch {
        return { writable: false, reason: 'the metadata database is not reachable' };
      }
      return blobs.health();
    },
    async close() {
      await metadata.close();
      await blobs.close();
    },
  };
}
