import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { openConfiguredStore } from '../../src/storage.js';
import type { Store } from '../../src/store/index.js';
import { blob, makeImage } from '../helpers/images.js';
import { pushBlob, pushImage } from '../helpers/registry.js';
import { runCli, spawnWharf, tempDir, testStorage, type WharfProcess } from '../helpers/server.js';
import { storedBlobs, storeUnregistered } from '../helpers/stored.js';

// `wharf gc` beside a running server, killed with SIGKILL in the middle of a collection: nothing
// reachable is lost, and the next collection takes over the dead collector's lease and finishes.
// On the storage WHARF_TEST_STORAGE chooses (SQLite and files, or PostgreSQL and S3).

/** A collector that stops at a chosen deletion until it is killed (see the helper). */
const pausedGcPath = fileURLToPath(new URL('../helpers/paused-gc.js', import.meta.url));

let wharf: WharfProcess | null = null;
test.after.each(() => { wharf?.child.kill('SIGKILL'); wharf = null; });

/** A `wharf serve` on fresh storage; its config file is the one `wharf gc --config` reads too. */
async function serve(): Promise<{ dataDir: string; storage: Record<string, unknown>; configFile: string }> {
  const dataDir = await tempDir();
  const storage = await testStorage();
  const config = `dataDir: ${dataDir}\nstorage: ${JSON.stringify(storage)}\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\ngc: { grace: 0s, interval: 0 }\n`;
  wharf = await spawnWharf(dataDir, { config });
  return { dataDir, storage, configFile: `${dataDir}.yaml` };
}

/** Runs `use` on the store that config names, as a collector would open it. */
async function withStore<T>(configFile: string, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openConfiguredStore(loadConfig(configFile), { recover: false });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

async function pulls(url: string, name: string, image: ReturnType<typeof makeImage>): Promise<void> {
  assert.is((await fetch(`${url}/v2/${name}/manifests/1`)).status, 200);
  for (const item of [image.config, ...image.layers]) {
    const response = await fetch(`${url}/v2/${name}/blobs/${item.digest}`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(item.bytes), item.digest);
  }
}

test('kill -9 in the middle of deleting a batch, then collect again: nothing reachable lost, the rest goes', async () => {
  const server = await serve();
  const url = wharf!.url;
  const kept = makeImage({ layers: 2 });
  await pushImage(url, 'docker-local/kept', kept, '1');
  const garbage = Array.from({ length: 300 }, () => blob(randomBytes(256)));
  for (const item of garbage) await pushBlob(url, 'docker-local/junk', item);
  // And bytes nothing registers (as a restored backup leaves), for the last phase.
  for (let i = 0; i < 50; i++) await storeUnregistered(server, blob(randomBytes(64)));
  const total = (await storedBlobs(server)).length;
  assert.is(total, 3 + 300 + 50);
  // The collector stops once it has deleted 100 of the first batch of 200 marked blobs: it is
  // killed there, whatever the speed of the machine.
  const collector = spawn(process.execPath, [pausedGcPath, server.configFile, '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const left = new Set(await storedBlobs(server));
  assert.ok(left.size <= total - 100, 'the collection had deleted bytes');
  const marked = await withStore(server.configFile, (store) => store.metadata.collector.deleting(1000));
  assert.ok(marked.filter((row) => !left.has(row.digest)).length >= 100, 'rows still marked deleting whose bytes are gone');
  assert.ok(marked.some((row) => left.has(row.digest)), 'and some whose bytes are still there: killed in the middle of the batch');
  await pulls(url, 'docker-local/kept', kept);
  const again = await runCli(['gc', '--config', server.configFile]);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /wharf gc: removed 0 manifests and \d+ blobs/);
  assert.equal(await storedBlobs(server), [kept.config.digest, ...kept.layers.map((l) => l.digest)].sort());
  await pulls(url, 'docker-local/kept', kept);
});

test('a collection killed right after marking: the next one takes over the lease and finishes the deletions', async () => {
  const server = await serve();
  const junk = blob(randomBytes(1000));
  await pushBlob(wharf!.url, 'docker-local/junk', junk);
  const dead = spawnSync('true').pid!;
  await withStore(server.configFile, async (store) => {
    assert.is((await store.metadata.collector.sweepUnreferencedLinks('docker-local', Date.now() + 1, { after: null, size: 10 })).removed, 1);
    assert.equal((await store.metadata.collector.markUnusedBlobs(Date.now() + 1, { after: null, size: 10 })).marked.map((row) => row.digest), [junk.digest]);
    assert.is(await store.metadata.collector.lease(`${hostname()}:${dead}:killed`, Date.now(), Date.now() + 3_600_000), null);
  });
  assert.equal(await storedBlobs(server), [junk.digest], 'marked, bytes still there: the kill came here');
  const dry = await runCli(['gc', '--dry-run', '--config', server.configFile]);
  assert.is(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove 0 manifests and 0 blobs.*dry run/);
  const result = await runCli(['gc', '--config', server.configFile]);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /removed 0 manifests and 1 blobs \(1000 B freed\)/);
  assert.equal(await storedBlobs(server), []);
  assert.is((await fetch(`${wharf!.url}/v2/docker-local/junk/blobs/${junk.digest}`)).status, 404);
});

test('a second collector waits its turn: a live holder of the lease is named, not overrun', async () => {
  const server = await serve();
  const pid = wharf!.child.pid;
  await withStore(server.configFile, async (store) => {
    assert.is(await store.metadata.collector.lease(`${hostname()}:${pid}:running`, Date.now(), Date.now() + 60_000), null);
  });
  const result = await runCli(['gc', '--config', server.configFile]);
  assert.is(result.code, 1);
  assert.match(result.stderr, `another garbage collection is running (${hostname()} pid ${pid})`);
});

test.run();
