import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitOf } from './children.js';

// The tests' PostgreSQL does not outlive a test process killed with SIGKILL (a CI timeout): its
// watchdog stops the postmaster and removes the directory.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a SIGKILLed test process leaves no postmaster and no directory behind', async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./postgres-child.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = exitOf(child, 120_000);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
  try {
    assert.ok(alive(pid), 'the postmaster runs');
    child.kill('SIGKILL');
    assert.is(await exited, null);
    // Polled, bounded: the watchdog's pg_ctl stop -m immediate takes well under a second here.
    for (const deadline = Date.now() + 30_000; (alive(pid) || existsSync(dir)) && Date.now() < deadline;) await sleep(50);
    assert.not.ok(alive(pid), `postmaster ${pid} is gone`);
    assert.not.ok(existsSync(dir), `${dir} is removed`);
  } finally {
    // Should the watchdog have failed, do its work (immediate shutdown) so the run leaks nothing.
    if (alive(pid)) process.kill(pid, 'SIGQUIT');
  }
});

test.run();
