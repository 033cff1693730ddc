import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, printedThenKilled } from './children.js';

// The servers tests start (s3rver, Pebble, Distribution) do not outlive a test process killed
// with SIGKILL (a CI timeout): the watchdog each is armed with kills it.

test('a SIGKILLed test process leaves no s3rver, Pebble or Distribution behind', async () => {
  const servers = await printedThenKilled<{ pid: number; args: string }[]>(new URL('./services-child.js', import.meta.url), (running) => {
    for (const name of ['s3rver', 'pebble', 'docker-registry']) assert.ok(running.some((server) => server.args.includes(name) && alive(server.pid)), `${name} runs: ${JSON.stringify(running)}`);
  });
  try {
    // Polled, bounded: the watchdogs run as soon as the pipe from the killed process closes.
    for (const deadline = Date.now() + 30_000; servers.some((server) => alive(server.pid)) && Date.now() < deadline;) await sleep(50);
    for (const server of servers) assert.not.ok(alive(server.pid), `${server.args} (${server.pid}) is gone`);
  } finally {
    // Should a watchdog have failed, do its work so the run leaks nothing.
    for (const server of servers) if (alive(server.pid)) process.kill(server.pid, 'SIGKILL');
  }
});

test.run();
