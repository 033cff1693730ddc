import { mkdir } from 'node:fs/promises';
import { BlobStore } from './blobs.js';
import { layout } from './layout.js';
import { MetadataStore } from './metadata.js';
import { UploadSessions } from './uploads.js';

export interface Store {
  blobs: BlobStore;
  metadata: MetadataStore;
  uploads: UploadSessions;
  close(): void;
}

/** Opens (creating if needed) the data directory and recovers from an interrupted run. */
export async function openStore(dataDir: string): Promise<Store> {
  const paths = layout(dataDir);
  await mkdir(dataDir, { recursive: true });
  const blobs = new BlobStore(paths);
  await blobs.prepare();
  const metadata = new MetadataStore(paths.database);
  const uploads = new UploadSessions({ layout: paths, metadata, blobs });
  await uploads.purgeStale();
  return { blobs, metadata, uploads, close: () => metadata.close() };
}
