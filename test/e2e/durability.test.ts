import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob, makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { exitOf } from '../helpers/children.js';

let dataDir: string;
let running: WharfProcess | null = null;

test.before.each(async () => {
  dataDir = await tempDir();
});
test.after.each(async () => {
  running?.child.kill('SIGKILL');
  running = null;
  await rm(dataDir, { recursive: true, force: true });
});

async function killHard(wharf: WharfProcess): Promise<void> {
  const exited = new Promise((resolve) => wharf.child.once('exit', resolve));
  wharf.child.kill('SIGKILL');
  await exited;
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(join(dataDir, dir), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
}

/** Starts a request that sends `first` and then stalls, as a client cut off mid-upload. */
function stalledUpload(url: string, method: string, total: number, first: Buffer): void {
  const req = request(url, { method, headers: { 'Content-Length': String(total) } });
  req.on('error', () => undefined);
  req.write(first);
}

/** Polls `check` every 25 ms; fails after 30 s. */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(25)) {
    if (await check()) return;
  }
  throw new Error('condition not reached within 30 s');
}

test('an image pushed before a hard kill is intact after restart', async () => {
  let wharf = await spawnWharf(dataDir);
  const image = makeImage({ layers: 3 });
  await pushImage(wharf.url, 'docker-local/team/app', image, '1.0');
  await killHard(wharf);
  wharf = running = await spawnWharf(dataDir);
  const manifest = await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/1.0`);
  assert.is(manifest.status, 200);
  assert.equal(Buffer.from(await manifest.arrayBuffer()), image.manifest);
  for (const layer of image.layers) {
    const response = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${layer.digest}`);
    assert.equal(Buffer.from(await response.arrayBuffer()), layer.bytes);
  }
  assert.equal(await (await fetch(`${wharf.url}/v2/docker-local/team/app/tags/list`)).json(), { name: 'docker-local/team/app', tags: ['1.0'] });
});

test('a kill during a monolithic upload leaves no blob and no temp file', async () => {
  const wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(4 * 1024 * 1024));
  stalledUpload(`${wharf.url}/v2/docker-local/app/blobs/uploads/?digest=${item.digest}`, 'POST', item.bytes.length, item.bytes.subarray(0, 1024 * 1024));
  await waitFor(async () => (await files('tmp')).length > 0);
  await killHard(wharf);
  running = await spawnWharf(dataDir);
  assert.equal(await files('tmp'), []);
  assert.not.ok((await files('blobs')).includes(item.digest.slice(7)));
  assert.is((await fetch(`${running.url}/v2/docker-local/app/blobs/${item.digest}`, { method: 'HEAD' })).status, 404);
});

test('a kill during a chunked upload leaves a session that resumes from the bytes on disk', async () => {
  let wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(3 * 1024 * 1024));
  const start = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  const firstChunk = item.bytes.subarray(0, 1024 * 1024);
  assert.is((await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: firstChunk })).status, 202);
  const stalled = item.bytes.subarray(1024 * 1024, 1024 * 1024 + 65536);
  stalledUpload(`${wharf.url}${location}`, 'PATCH', 2 * 1024 * 1024, stalled);
  // The kill must land while the unacknowledged bytes are on disk, mid-PATCH.
  const session = join(dataDir, 'uploads', location.split('/').pop()!.split('?')[0]);
  await waitFor(async () => (await stat(session)).size === firstChunk.length + stalled.length);
  await killHard(wharf);
  wharf = running = await spawnWharf(dataDir);
  const status = await fetch(`${wharf.url}${location}`);
  assert.is(status.status, 204);
  const stored = Number(status.headers.get('range')!.split('-')[1]) + 1;
  assert.ok(stored >= firstChunk.length, `kept at least the acknowledged chunk (${stored})`);
  const rest = item.bytes.subarray(stored);
  const resumed = await fetch(`${wharf.url}${location}`, { method: 'PATCH', body: rest, headers: { 'Content-Range': `${stored}-${item.bytes.length - 1}` } });
  assert.is(resumed.status, 202);
  assert.is((await fetch(`${wharf.url}${location}?digest=${item.digest}`, { method: 'PUT' })).status, 201);
  const pulled = await fetch(`${wharf.url}/v2/docker-local/app/blobs/${item.digest}`);
  assert.equal(Buffer.from(await pulled.arrayBuffer()), item.bytes);
});

test('SIGTERM stops accepting but lets an upload in flight finish, then exits 0', async () => {
  const wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(2 * 1024 * 1024));
  const start = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  const half = 1024 * 1024;
  const req = request(`${wharf.url}${location}`, { method: 'PATCH', headers: { 'Content-Length': String(item.bytes.length) } });
  const answer = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.write(item.bytes.subarray(0, half));
  // SIGTERM once the PATCH is in flight (its first half in the session), the rest once shutdown has begun.
  const session = join(dataDir, 'uploads', location.split('/').pop()!.split('?')[0]!);
  await waitFor(async () => (await stat(session)).size === half);
  const exited = exitOf(wharf.child);
  wharf.child.kill('SIGTERM');
  await wharf.log.waitFor('SIGTERM: shutting down');
  req.end(item.bytes.subarray(half));
  assert.is(await answer, 202, 'the upload in flight completed');
  assert.is(await exited, 0);
  let refused = false;
  await fetch(`${wharf.url}/v2/`).catch(() => { refused = true; });
  assert.ok(refused, 'no longer accepting');
});

test.run();
