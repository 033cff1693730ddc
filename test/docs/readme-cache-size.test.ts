import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution } from '../helpers/upstream.js';

// README, "Remote repositories" and "Garbage collection": only blobs count toward
// `cache.maxSize`; cached manifests are small and stay until deleted. A remote repository whose
// limit is exactly the bytes of the blobs it caches, with a manifest cached besides.

test('cache.maxSize counts blobs only: blobs filling it exactly beside a cached manifest are all kept, and eviction leaves the manifest', async () => {
  const distribution = await startDistribution();
  const proxy = await startCountingProxy(distribution.url);
  const image = makeImage({ layers: 2, layerBytes: 64 * 1024 });
  const extra = makeImage({ layers: 1, layerBytes: 64 * 1024 });
  await seedImage(distribution.url, 'team/app', image, '1');
  await seedImage(distribution.url, 'team/extra', extra, '1');
  const blobs = [image.config, ...image.layers];
  const maxSize = blobs.reduce((sum, item) => sum + item.bytes.length, 0);
  const repositories = { 'docker-remote': { type: 'remote', url: proxy.url, offlineAfter: 100, cache: { maxSize } } };
  const get = (server: TestServer, path: string) => fetch(`${server.url}/v2/docker-remote/team/${path}`);
  let wharf = await startWharf({ repositories });
  try {
    assert.is((await get(wharf, 'app/manifests/1')).status, 200);
    for (const item of blobs) assert.is((await (await get(wharf, `app/blobs/${item.digest}`)).arrayBuffer()).byteLength, item.bytes.length);
    // Stopping waits for the evictions the commits started; the next server reads what is left.
    await wharf.stop();
    wharf = await startWharf({ repositories, dataDir: wharf.dataDir, storage: wharf.storage });
    proxy.fault = 'down';
    for (const item of blobs) assert.is((await get(wharf, `app/blobs/${item.digest}`)).status, 200, `${item.digest} is still cached`);
    // One more blob is over the limit: blobs are evicted, the manifest stays.
    proxy.fault = 'none';
    assert.is((await (await get(wharf, `extra/blobs/${extra.layers[0]!.digest}`)).arrayBuffer()).byteLength, extra.layers[0]!.bytes.length);
    const evictions = async () => Number(/^wharf_cache_evictions_total\{repository="docker-remote"\} (\d+)$/m.exec(await (await fetch(`${wharf.url}/metrics`)).text())?.[1] ?? 0);
    await eventually('a blob is evicted', async () => (await evictions()) > 0, 10_000);
    proxy.fault = 'down';
    const manifest = await get(wharf, `app/manifests/${image.digest}`);
    assert.is(manifest.status, 200);
    assert.equal(Buffer.from(await manifest.arrayBuffer()), image.manifest);
  } finally {
    await wharf.cleanup();
    await proxy.stop();
    await distribution.stop();
  }
});

test.run();
