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

/** Waits (up to 10 s) until `done` holds; the assertions after it say what was expected. */
async function settle(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await done()); i++) await sleep(50);
}

async function onDisk(digest: string): Promise<boolean> {
  return (await storedBlobs(fixture.wharf)).includes(digest);
}

test('over cache.maxSize the least recently pulled blobs go; a blob a local repository holds stays on disk', async () => {
  const image = makeImage({ layers: 4, layerBytes: 1 << 20 });
  const [a, b, c, d] = image.layers as [typeof image.layers[0], typeof image.layers[0], typeof image.layers[0], typeof image.layers[0]];
  await seedImage(fixture.distribution.url, 'team/big', image, '1');
  await pushImage(fixture.wharf.url, 'docker-local/team/keep', makeImage({ share: [b] }), '1');
  const pull = async (digest: string) => {
    const response = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/big/blobs/${digest}`);
    assert.is(response.status, 200);
    await response.arrayBuffer();
    clock += 1000;
  };
  await pull(a.digest);
  await pull(b.digest);
  await pull(a.digest); // a is now more recently pulled than b
  await pull(c.digest); // 3 MiB > 2500 KiB: b goes (least recently pulled)
  await pull(d.digest); // a goes
  // A client has its bytes once they verify; the commit, and the eviction it triggers, follow.
  // Eviction only unlinks: the collector frees the bytes.
  await settle(async () => (await fetch(`${fixture.wharf.url}/metrics`).then((r) => r.text())).includes('wharf_cache_evictions_total{repository="docker-remote"} 2'));
  assert.ok(await onDisk(a.digest), 'evicted, not yet collected');
  const summary = await fixture.wharf.collectGarbage();
  assert.is(summary.blobs, 1, 'only a: b is still linked by docker-local');
  assert.ok(await onDisk(b.digest), 'b is still held by docker-local');
  assert.not.ok(await onDisk(a.digest), 'a was evicted and nothing else holds it');
  assert.ok(await onDisk(c.digest));
  assert.ok(await onDisk(d.digest));
  fixture.proxy.reset();
  await pull(a.digest);
  assert.is(fixture.proxy.counts['GET blob'], 1, 'an evicted blob is fetched again');
  const metrics = await (await fetch(`${fixture.wharf.url}/metrics`)).text();
  assert.match(metrics, /wharf_cache_evictions_total\{repository="docker-remote"\} [1-9]/);
});

test.run();
