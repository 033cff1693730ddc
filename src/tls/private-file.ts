import { chmod, rename, writeFile } from 'node:fs/promises';

/** Writes key material readable by its owner only (0600), replacing any old file in one rename. */
export async function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  const temporary = `${path}.tmp`;
  await writeFile(temporary, data, { mode: 0o600 });
  await chmod(temporary, 0o600); // a leftover temporary file keeps its old mode through writeFile
  await rename(temporary, path);
}
