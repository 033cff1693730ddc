import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * SIGKILLs a server a test started (s3rver, Pebble, Distribution) and removes `dir`, its temp
 * directory, when this process is gone. `dir` is on the server's command line: a pid whose
 * command line no longer names it (the server ended and the pid went to another) is left alone.
 */
export function killWhenGone(child: ChildProcess, dir: string): void {
  if (child.pid === undefined) return; // it never started
  whenGone('grep -qaF -- "$2" "/proc/$1/cmdline" 2>/dev/null && kill -9 "$1"; rm -rf "$2"', [String(child.pid), dir]);
}
