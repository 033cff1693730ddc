import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/validate.js';
import { openConfiguredStore } from '../../src/storage.js';
import type { Store } from '../../src/store/index.js';
import { s3Keys, s3Put, type S3Settings } from './s3.js';

// What a server's storage really holds: blob digests from the filesystem or from the bucket.

export async function storedBlobs(server: { dataDir: string; storage: Record<string, unknown> }): Promise<string[]> {
  const blobs = server.storage.blobs as S3Settings | undefined;
  if (blobs?.driver === 's3') {
    return (await s3Keys(blobs)).filter((key) => key.includes('/blobs/')).map((key) => {
      const [algorithm, , hex] = key.slice(key.indexOf('/blobs/') + 7).split('/');
      return `${algorithm}:${hex}`;
    }).sort();
  }
  const root = join(server.dataDir, 'blobs');
  const found: string[] = [];
  for (const algorithm of await readdir(root).catch(() => [])) {
    for (const prefix of await readdir(join(root, algorithm))) {
      for (const hex of await readdir(join(root, algorithm, prefix))) found.push(`${algorithm}:${hex}`);
    }
  }
  return found.sort();
}

/** Upload sessions whose bytes the storage holds (their UUIDs). */
export async function storedSessions(server: { dataDir: string; storage: Record<string, unknown> }): Promise<string[]> {
  const blobs = server.storage.blobs as S3Settings | undefined;
  if (blobs?.driver === 's3') {
    return [...new Set((await s3Keys(blobs)).filter((key) => key.includes('/uploads/')).map((key) => key.slice(key.indexOf('/uploads/') + 9).split('/')[0]!))].sort();
  }
  return (await readdir(join(server.dataDir, 'uploads')).catch(() => [])).sort();
}

/** Puts bytes where the storage keeps blobs (the drivers' key layout), no row naming them: as a restored backup leaves. */
export async function storeUnregistered(server: { dataDir: string; storage: Record<string, unknown> }, item: { digest: string; bytes: Buffer }): Promise<void> {
  const [algorithm, hex] = item.digest.split(':') as [string, string];
  const blobs = server.storage.blobs as S3Settings | undefined;
  if (blobs?.driver === 's3') return s3Put(blobs, `blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`, item.bytes);
  const dir = join(server.dataDir, 'blobs', algorithm, hex.slice(0, 2));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, hex), item.bytes);
}

/** Runs `work` on a store of its own over a server's database and storage (tests that write thousands of rows in one transaction). */
export async function withStore<T>(server: { dataDir: string; storage: Record<string, unknown> }, repositories: Record<string, unknown>, work: (store: Store) => Promise<T>): Promise<T> {
  const config = validateConfig({ dataDir: server.dataDir, storage: server.storage, repositories }, { baseDir: server.dataDir });
  const store = await openConfiguredStore(config, { recover: false, log: () => undefined });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
