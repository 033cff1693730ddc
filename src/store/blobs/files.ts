import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

// Durability helpers: a file becomes visible under its final name only after its bytes are on
// disk, and the rename itself is made durable by syncing the directory.

/** fsync a file or a directory; with `dataOnly`, fdatasync (the bytes, and the size that reaches them). */
export async function syncPath(path: string, options: { dataOnly?: boolean } = {}): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await (options.dataOnly ? handle.datasync() : handle.sync());
  } finally {
    await handle.close();
  }
}

/** Moves a complete, synced file into place atomically. */
export async function commitFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await rename(from, to);
  await syncPath(dirname(to));
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true });
}
