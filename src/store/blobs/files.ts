import { mkdir, open, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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

/** Below this much free space a write is not expected to succeed: /readyz says so. */
const minimumFreeBytes = 16 << 20;

/** Whether files can be written in `tmp` now (room on its disk, a write probe), for readiness; `root` is the disk to measure. */
export async function diskHealth(root: string, tmp: string): Promise<{ writable: boolean; reason?: string }> {
  try {
    const space = await statfs(root);
    if (space.bavail * space.bsize < minimumFreeBytes) return { writable: false, reason: 'storage is full' };
    const probe = join(tmp, '.probe');
    await writeFile(probe, 'ok');
    await removeQuietly(probe);
    return { writable: true };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { writable: false, reason: code === 'ENOSPC' ? 'storage is full' : `storage is not writable (${code ?? 'error'})` };
  }
}
