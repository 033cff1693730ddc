import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob } from '../helpers/images.js';
import { startWharf, tempDir } from '../helpers/server.js';

// Issue 11 item 16: a full disk answers 507 STORAGE_FULL ("storage is full"), logged once per
// occurrence without paths; nothing half-written is kept or served; readiness says so; pushes
// succeed again once space is freed. The disk is a real 48 MiB tmpfs mounted by the test.

const run = promisify(execFile);

/** Fills the file system up to `leave` free bytes. */
async function fill(dir: string, leave: number): Promise<string> {
  const file = join(dir, 'filler');
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (;;) {
      const { bavail, bsize } = await statfs(dir);
      const free = bavail * bsize;
      if (free <= leave) break;
      await handle.write(chunk, 0, Math.min(chunk.length, free - leave));
    }
  } finally {
    await handle.close();
  }
  return file;
}

test('a push to a full disk is 507 STORAGE_FULL, leaves nothing, and works once space is freed', async () => {
  const mountPoint = await tempDir('wharf-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]);
  const messages: string[] = [];
  const wharf = await startWharf({ dataDir: join(mountPoint, 'data'), log: (message) => messages.push(message), storage: {} });
  try {
    const filler = await fill(mountPoint, 1 << 20);
    const item = blob(randomBytes(4 << 20));
    const push = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes });
    assert.is(push.status, 507);
    const body = (await push.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'STORAGE_FULL');
    assert.equal(body.errors[0]!.message, 'storage is full');
    assert.is(messages.filter((line) => line.includes('storage is full')).length, 1, 'logged once');
    assert.not.ok(messages.some((line) => line.includes(mountPoint)), 'no path in the log');
    // A chunked session keeps what it had; its failed chunk is cut off again.
    const start = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    assert.is((await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: item.bytes.subarray(0, 1000) })).status, 202);
    assert.is((await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: item.bytes.subarray(1000) })).status, 507);
    assert.is((await fetch(`${wharf.url}${location}`)).headers.get('range'), '0-999');
    const health = await wharf.storageHealth();
    assert.equal(health, { writable: false, reason: 'storage is full' });
    const ready = await fetch(`${wharf.url}/readyz`);
    assert.is(ready.status, 503);
    assert.is(await ready.text(), 'not ready: storage is full\n');
    assert.is((await fetch(`${wharf.url}/v2/docker-local/app/blobs/${item.digest}`, { method: 'HEAD' })).status, 404, 'nothing half-written is served');
    assert.equal(await readdir(join(mountPoint, 'data', 'tmp')), [], 'no temp file left');
    await rm(filler);
    assert.equal(await wharf.storageHealth(), { writable: true });
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 200);
    const again = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes });
    assert.is(again.status, 201, 'pushes recover once space is freed');
    assert.is((await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: item.bytes.subarray(1000), headers: { 'Content-Range': `1000-${item.bytes.length - 1}` } })).status, 202);
    assert.is((await fetch(`${wharf.url}${location}?digest=${item.digest}`, { method: 'PUT' })).status, 201);
    const pulled = await fetch(`${wharf.url}/v2/docker-local/app/blobs/${item.digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(item.bytes));
  } finally {
    await wharf.stop();
    await run('umount', [mountPoint]);
  }
});

// README, "Storage and durability": the threshold of storageHealth().
test('storage health: not writable ("storage is full") below 16 MiB free, writable above', async () => {
  const mountPoint = await tempDir('wharf-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]);
  const wharf = await startWharf({ dataDir: join(mountPoint, 'data'), storage: {}, log: () => undefined });
  try {
    assert.equal(await wharf.storageHealth(), { writable: true });
    const filler = await fill(mountPoint, 20 << 20);
    assert.equal(await wharf.storageHealth(), { writable: true }, '20 MiB free');
    await fill(mountPoint, 12 << 20);
    assert.equal(await wharf.storageHealth(), { writable: false, reason: 'storage is full' }, '12 MiB free');
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 503);
    await rm(filler);
    assert.equal(await wharf.storageHealth(), { writable: true });
  } finally {
    await wharf.stop();
    await run('umount', [mountPoint]);
  }
});

test.run();
