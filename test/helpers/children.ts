import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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

/** Whether a process of this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the script `url` (a test process that starts servers and prints one JSON line about
 * them), checks what it printed while it runs, SIGKILLs it as a CI timeout would, and returns what
 * it printed.
 */
export async function printedThenKilled<T>(url: URL, whileRunning: (printed: T) => void): Promise<T> {
  const child = spawn(process.execPath, [fileURLToPath(url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = exitOf(child, 120_000);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const printed = JSON.parse(line) as T;
  try {
    whileRunning(printed);
  } finally {
    child.kill('SIGKILL');
    if ((await exited) !== null) throw new Error(`the child exited by itself: ${line}`);
  }
  return printed;
}
