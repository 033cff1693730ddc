import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

// Cleanup that outlives the test process: a shell in its own process group reads a pipe from this
// process and runs `script` once the pipe closes, which the kernel does however this process ends
// (exit, an uncaught error, SIGKILL from a CI timeout). A normal exit closes it just the same.

/** Runs `script` (sh, with `args` as $1…) when this process is gone. */
export function whenGone(script: string, args: string[]): void {
  const watchdog = spawn('sh', ['-c', `cat >/dev/null; ${script}`, 'watchdog', ...args], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  // Neither the watchdog nor its pipe keeps this process alive.
  watchdog.unref();
  (watchdog.stdin as Socket).unref();
}
