import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDigest } from '../../src/oci/digest.js';
import { openStore } from '../../src/store/index.js';
import { blob } from '../helpers/images.js';
import { errorCode } from '../helpers/registry.js';
import { spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';

// Issue 11 item 15: an upload session interrupted by a crash must resume, finish or answer
// BLOB_UPLOAD_UNKNOWN — never 500. The states a crash can leave between the steps of a finish
// are built here exactly, with the server stopped, then the server is started on them.

let wharf: WharfProcess | null = null;
test.after.each(async () => {
  if (!wharf) return;
  const exited = new Promise((resolve) => wharf!.child.once('exit', resolve));
  wharf.child.kill('SIGKILL');
  await exited;
  wharf = null;
});

async function stop(): Promise<void> {
  const exited = new Promise((resolve) => wharf!.child.once('exit', resolve));
  wharf!.child.kill('SIGKILL');
  await exited;
  wharf = null;
}

/** Starts a session holding `bytes`; returns its Location. */
async function session(url: string, bytes: Buffer<ArrayBuffer>): Promise<string> {
  const start = await fetch(`${url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  assert.is((await fetch(`${url}${location}`, { method: 'PATCH', body: bytes })).status, 202);
  return location;
}

const storeOf = (dataDir: string) => openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: false });

test('killed after the bytes moved into the blob store, before the link: start-up finishes the link; the session is unknown', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(300_000));
  const location = await session(wharf.url, item.bytes);
  const uuid = location.split('/').at(-1)!;
  await stop();
  // What finish() had done when the process died: marked the session, claimed the blob, moved the bytes.
  const store = await storeOf(dataDir);
  await store.metadata.uploads.committing(uuid, item.digest);
  await store.metadata.blobs.claim(item.digest, item.bytes.length, Date.now());
  await store.blobs.sessions.commit(uuid, parseDigest(item.digest)!);
  await store.close();
  wharf = await spawnWharf(dataDir);
  const status = await fetch(`${wharf.url}${location}`);
  assert.is(status.status, 404);
  assert.is(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
  const pulled = await fetch(`${wharf.url}/v2/docker-local/app/blobs/${item.digest}`);
  assert.is(pulled.status, 200, 'the interrupted finish was completed');
  assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(item.bytes));
});

test('a session whose bytes are gone answers BLOB_UPLOAD_UNKNOWN to status, PATCH and PUT, before and after a restart', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(100_000));
  const location = await session(wharf.url, item.bytes);
  const uuid = location.split('/').at(-1)!;
  const other = await session(wharf.url, item.bytes);
  await rm(join(dataDir, 'uploads', uuid));
  // While running: the bytes vanished under a live server.
  for (const [method, body] of [['GET', undefined], ['PATCH', item.bytes], ['PUT', undefined]] as const) {
    const response = await fetch(`${wharf.url}${location}${method === 'PUT' ? `?digest=${item.digest}` : ''}`, { method, body });
    assert.is(response.status, 404, method);
    assert.is(await errorCode(response), 'BLOB_UPLOAD_UNKNOWN');
  }
  await stop();
  await rm(join(dataDir, 'uploads', other.split('/').at(-1)!));
  wharf = await spawnWharf(dataDir);
  const status = await fetch(`${wharf.url}${other}`);
  assert.is(status.status, 404);
  assert.is(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
  const store = await storeOf(dataDir);
  assert.equal(await store.metadata.uploads.all(), [], 'start-up removed the session row');
  await store.close();
});

test('killed mid-finish before the bytes moved: the session resumes and finishes', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir);
  const item = blob(randomBytes(200_000));
  const location = await session(wharf.url, item.bytes);
  const uuid = location.split('/').at(-1)!;
  await stop();
  const store = await storeOf(dataDir);
  await store.metadata.uploads.committing(uuid, item.digest);
  await store.close();
  wharf = await spawnWharf(dataDir);
  const status = await fetch(`${wharf.url}${location}`);
  assert.is(status.status, 204);
  assert.is(status.headers.get('range'), `0-${item.bytes.length - 1}`);
  assert.is((await fetch(`${wharf.url}${location}?digest=${item.digest}`, { method: 'PUT' })).status, 201);
  assert.is((await fetch(`${wharf.url}/v2/docker-local/app/blobs/${item.digest}`, { method: 'HEAD' })).status, 200);
});

test.run();
