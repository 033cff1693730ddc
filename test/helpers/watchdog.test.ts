import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitOf } from './children.js';

// The servers tests start (s3rver, Pebble, Distribution) do not outlive a test process killed
// with SIGKILL (a CI timeout): the watchdog each is armed with kills it.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a SIGKILLed test process leaves no s3rver, Pebble or Distribution behind', async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./services-child.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = exitOf(child, 120_000);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const servers = JSON.parse(line) as { pid: number; args: string }[];
  try {
    for (const name of ['s3rver', 'pebble', 'docker-registry']) assert.ok(servers.some((server) => server.args.includes(name)), `${name} runs: ${line}`);
    child.kill('SIGKILL');
    assert.is(await exited, null);
    // Polled, bounded: the watchdogs run as soon as the pipe from the killed process closes.
    for (const deadline = Date.now() + 30_000; servers.some((server) => alive(server.pid)) && Date.now() < deadline;) await sleep(50);
    for (const server of servers) assert.not.ok(alive(server.pid), `${server.args} (${server.pid}) is gone`);
  } finally {
    // Should a watchdog have failed, do its work so the run leaks nothing.
    for (const server of servers) if (alive(server.pid)) process.kill(server.pid, 'SIGKILL');
  }
});

test.run();
