import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore } from '../../src/store/index.js';
import { blob, makeImage } from '../helpers/images.js';
import { pushBlob, pushImage } from '../helpers/registry.js';
import { runCli, spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';

// `wharf gc` beside a running server, killed with SIGKILL in the middle of a collection: nothing
// reachable is lost, and the next collection takes over the dead collector's lease and finishes.

/** A collector that stops at a chosen deletion until it is killed (see the helper). */
const pausedGcPath = fileURLToPath(new URL('../helpers/paused-gc.js', import.meta.url));

let wharf: WharfProcess | null = null;
test.after.each(() => { wharf?.child.kill('SIGKILL'); wharf = null; });

/** The server's config, which `wharf gc --config` reads too. */
const config = (dataDir: string) => `dataDir: ${dataDir}\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\ngc: { grace: 0s, interval: 0 }\n`;

async function pulls(url: string, name: string, image: ReturnType<typeof makeImage>): Promise<void> {
  assert.is((await fetch(`${url}/v2/${name}/manifests/1`)).status, 200);
  for (const item of [image.config, ...image.layers]) {
    const response = await fetch(`${url}/v2/${name}/blobs/${item.digest}`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(item.bytes), item.digest);
  }
}

test('kill -9 in the middle of deleting a batch, then collect again: nothing reachable lost, the rest goes', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir, { config: config(dataDir) });
  const kept = makeImage({ layers: 2 });
  await pushImage(wharf.url, 'docker-local/kept', kept, '1');
  const garbage = Array.from({ length: 300 }, () => blob(randomBytes(256)));
  for (const item of garbage) await pushBlob(wharf.url, 'docker-local/junk', item);
  // And files nothing registers (as a restored backup leaves), for the last phase.
  for (let i = 0; i < 50; i++) {
    const item = blob(randomBytes(64));
    const dir = join(dataDir, 'blobs', 'sha256', item.digest.slice(7, 9));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, item.digest.slice(7)), item.bytes);
  }
  const total = (await storedBlobs({ dataDir, storage: {} })).length;
  const configFile = `${dataDir}.yaml`;
  // The collector stops once it has deleted 100 of the first batch of 200 marked blobs: it is
  // killed there, whatever the speed of the machine.
  const collector = spawn(process.execPath, [pausedGcPath, configFile, '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => collector.once('exit', resolve));
  let stderr = '';
  collector.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the collector did not reach its 100th deletion within 60 s')), 60_000);
      collector.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('paused')) { clearTimeout(timer); resolve(); } });
      collector.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the collector exited with ${code} before pausing: ${stderr}`)); });
    });
  } finally {
    collector.kill('SIGKILL');
    await exited;
  }
  const left = new Set(await storedBlobs({ dataDir, storage: {} }));
  assert.ok(left.size <= total - 100, 'the collection had deleted bytes');
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: false });
  try {
    const marked = await store.metadata.collector.deleting(1000);
    assert.ok(marked.filter((row) => !left.has(row.digest)).length >= 100, 'rows still marked deleting whose bytes are gone');
    assert.ok(marked.some((row) => left.has(row.digest)), 'and some whose bytes are still there: killed in the middle of the batch');
  } finally {
    await store.close();
  }
  await pulls(wharf.url, 'docker-local/kept', kept);
  const again = await runCli(['gc', '--config', configFile]);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /wharf gc: removed 0 manifests and \d+ blobs/);
  assert.equal(await storedBlobs({ dataDir, storage: {} }), [kept.config.digest, ...kept.layers.map((l) => l.digest)].sort());
  await pulls(wharf.url, 'docker-local/kept', kept);
});

test('a collection killed right after marking: the next one takes over the lease and finishes the deletions', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir, { config: config(dataDir) });
  const junk = blob(randomBytes(1000));
  await pushBlob(wharf.url, 'docker-local/junk', junk);
  const dead = spawnSync('true').pid!;
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: false });
  try {
    assert.is((await store.metadata.collector.sweepUnreferencedLinks('docker-local', Date.now() + 1, { after: null, size: 10 })).removed, 1);
    assert.equal((await store.metadata.collector.markUnusedBlobs(Date.now() + 1, { after: null, size: 10 })).marked.map((row) => row.digest), [junk.digest]);
    assert.is(await store.metadata.collector.lease(`${hostname()}:${dead}:killed`, Date.now(), Date.now() + 3_600_000), null);
  } finally {
    await store.close();
  }
  assert.equal(await storedBlobs({ dataDir, storage: {} }), [junk.digest], 'marked, bytes still there: the kill came here');
  const dry = await runCli(['gc', '--dry-run', '--config', `${dataDir}.yaml`]);
  assert.is(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 0 manifests and 0 blobs.*dry run/);
  const result = await runCli(['gc', '--config', `${dataDir}.yaml`]);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /removed 0 manifests and 1 blobs \(1000 B freed\)/);
  assert.equal(await storedBlobs({ dataDir, storage: {} }), []);
  assert.is((await fetch(`${wharf.url}/v2/docker-local/junk/blobs/${junk.digest}`)).status, 404);
});

test('a second collector waits its turn: a live holder of the lease is named, not overrun', async () => {
  const dataDir = await tempDir();
  wharf = await spawnWharf(dataDir, { config: config(dataDir) });
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: false });
  try {
    assert.is(await store.metadata.collector.lease(`${hostname()}:${wharf.child.pid}:running`, Date.now(), Date.now() + 60_000), null);
  } finally {
    await store.close();
  }
  const result = await runCli(['gc', '--config', `${dataDir}.yaml`]);
  assert.is(result.code, 1);
  assert.match(result.stderr, `another garbage collection is running (${hostname()} pid ${wharf.child.pid})`);
});

test.run();
