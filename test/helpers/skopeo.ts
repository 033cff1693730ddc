import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './server.js';

const run = promisify(execFile);

/** Runs Debian's skopeo with an accept-anything policy and plain HTTP to the test server (killed after 2 min: a stuck copy fails the test). */
export async function skopeo(args: string[]): Promise<string> {
  const dir = await tempDir('wharf-skopeo-');
  const policy = join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const [command, ...rest] = args;
  const { stdout } = await run('skopeo', ['--policy', policy, command!, ...rest], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  return stdout;
}
