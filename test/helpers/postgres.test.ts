import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, printedThenKilled } from './children.js';

// The tests' PostgreSQL does not outlive a test process killed with SIGKILL (a CI timeout): its
// watchdog stops the postmaster and removes the directory.

test('a SIGKILLed test process leaves no postmaster and no directory behind', async () => {
  const { pid, dir } = await printedThenKilled<{ pid: number; dir: string }>(new URL('./postgres-child.js', import.meta.url), (printed) => assert.ok(alive(printed.pid), 'the postmaster runs'));
  try {
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
