import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError } from './errors.js';

// The directories the config names (dataDir, certsDir), made and checked before anything is
// written there. Node's recursive mkdir is not used for them: where a directory's parent exists
// but cannot hold it and says ENOENT (/proc and other special filesystems), it makes the parent
// and tries again, forever, and start-up hung. Here each level is tried at most twice.

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** mkdir -p: parents first; an error after the parent was made (or was there) is final. */
async function makeDirectories(path: string, mode: number | undefined): Promise<void> {
  try {
    await mkdir(path, { mode });
    return;
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return; // a directory, or not: the caller checks
    if (codeOf(error) !== 'ENOENT' || dirname(path) === path) throw error;
  }
  await makeDirectories(dirname(path), mode);
  await mkdir(path, { mode }).catch((error: unknown) => {
    if (codeOf(error) !== 'EEXIST') throw error;
  });
}

/**
 * Makes `path` (the value of config key `key`) a directory Wharf can write in, or stops with a
 * ConfigError naming the key: not creatable, not a directory, or not writable.
 */
export async function prepareDirectory(path: string, key: string, options: { mode?: number } = {}): Promise<void> {
  const refuse = (problem: string) => new ConfigError(key, `${path} must be a directory Wharf can write in: ${problem}`);
  try {
    await makeDirectories(path, options.mode);
  } catch (error) {
    throw refuse(`creating it failed (${codeOf(error)})`);
  }
  if (!(await stat(path).catch(() => null))?.isDirectory()) throw refuse('it is not a directory');
  const probe = join(path, `.wharf-probe-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
  } catch (error) {
    throw refuse(`writing a file in it failed (${codeOf(error)})`);
  }
  await rm(probe, { force: true });
}
