import type { ChildProcess } from 'node:child_process';

// Waiting for a child process to end, bounded: a child stuck in its shutdown fails the test (and
// is killed) instead of hanging the suite.

/**
 * The child's exit code (null after a signal) once it has exited, at once if it already has.
 * After `ms` it is killed with SIGKILL and the promise rejects.
 */
export function exitOf(child: ChildProcess, ms = 30_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${child.spawnfile} (pid ${child.pid}) did not exit within ${ms} ms`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Sends SIGTERM and waits, bounded, for the exit. */
export function terminate(child: ChildProcess): Promise<number | null> {
  const exited = exitOf(child);
  child.kill('SIGTERM');
  return exited;
}
