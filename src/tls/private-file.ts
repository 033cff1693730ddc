import { chmod, rename, writeFile } from 'node:fs/promises';

/** Writes a file with `mode`, replacing any old one in one rename: readers see the old file or the new one. */
export async function replaceFile(path: string, data: string | Buffer, mode: number): Promise<void> {
  const temporary = `${path}.tmp`;
  await writeFile(temporary, data, { mode });
  await chmod(temporary, mode); // a leftover temporary file keeps its old mode through writeFile
  await rename(temporary, path);
}

/** Writes key material readable by its owner only (0600), replacing any old file in one rename. */
export function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  return replaceFile(path, data, 0o600);
}
