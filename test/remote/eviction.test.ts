import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { pushImage, seedImage } from '../helpers/registry.js';
import { storedBlobs } from '../helpers/stored.js';
import { remoteFixture } from '../helpers/upstream.js';

// The store's clock: pulls are told apart by moving it, not by waiting.
let clock = Date.now();
const fixture = remoteFixture(test, (url) => ({
  'docker-local': { type: 'local' },
  'docker-remote': { type: 'remote', url, cache: { maxSize: '2500KiB' } },
}), { gc: { grace: 0 }, storageNow: () => clock });

/** Waits (up to 30 s) until `done` holds; the assertions after it say what was expected. */
async function settle(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await done()) && Date.now() < deadline) await sleep(50);
}

async function onDisk(digest: string): Promise<boolean> {
  return (await storedBlobs(fixture.wharf)).includes(digest);
}

/** A sample of docker-remote's series `name` in /metrics. */
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${fixture.wharf.url}/metrics`)).text();
  return Number(new RegExp(`^${name}\\{repository="docker-remote"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

test('over cache.maxSize the least recently pulled blobs go; a blob a local repository holds stays on disk', async () => {
  const image = makeImage({ layers: 4, layerBytes: 1 << 20 });
  const [a, b, c, d] = image.layers as [typeof image.layers[0], typeof image.layers[0], typeof image.layers[0], typeof image.layers[0]];
  await seedImage(fixture.distribution.url, 'team/big', image, '1');
  await pushImage(fixture.wharf.url, 'docker-local/team/keep', makeImage({ share: [b] }), '1');
  // A client has its bytes once they verify; the commit, and the eviction it triggers, follow.
  // Each pull waits for them, so that the store's clock tells the pulls apart.
  const pull = async (digest: string, settled: () => Promise<boolean>) => {
    const response = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/big/blobs/${digest}`);
    assert.is(response.status, 200);
    await response.arrayBuffer();
    await settle(settled);
    clock += 1000;
  };
  const cachedBytes = (bytes: number) => async () => (await metric('wharf_storage_bytes')) === bytes;
  const evictions = (count: number) => async () => (await metric('wharf_cache_evictions_total')) === count;
  await pull(a.digest, cachedBytes(a.bytes.length));
  await pull(b.digest, cachedBytes(a.bytes.length + b.bytes.length));
  await pull(a.digest, async () => true); // a is now more recently pulled than b
  await pull(c.digest, evictions(1)); // 3 MiB > 2500 KiB: b goes (least recently pulled)
  await pull(d.digest, evictions(2)); // a goes
  assert.is(await metric('wharf_storage_bytes'), c.bytes.length + d.bytes.length, 'c and d are cached');
  // Eviction only unlinks: the collector frees the bytes.
  assert.ok(await onDisk(a.digest), 'evicted, not yet collected');
  const summary = await fixture.wharf.collectGarbage();
  assert.is(summary.blobs, 1, 'only a: b is still linked by docker-local');
  assert.ok(await onDisk(b.digest), 'b is still held by docker-local');
  assert.not.ok(await onDisk(a.digest), 'a was evicted and nothing else holds it');
  assert.ok(await onDisk(c.digest));
  assert.ok(await onDisk(d.digest));
  fixture.proxy.reset();
  await pull(a.digest, evictions(3)); // c goes
  assert.is(fixture.proxy.counts['GET blob'], 1, 'an evicted blob is fetched again');
  assert.is(await metric('wharf_cache_evictions_total'), 3);
});

test.run();
