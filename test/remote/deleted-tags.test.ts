import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseManifest } from '../../src/oci/manifest.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { remoteFixture } from '../helpers/upstream.js';

// A tag the upstream deleted is dropped from the cache when the upstream says so (404): it is not
// served stale when the upstream later fails (that is for upstream trouble, not for its answer),
// and the 404 is remembered as for a tag never cached, instead of a HEAD upstream on every pull.

// The remote's clock (metadataTtl, the 404 memory), moved instead of waited for.
let clock = Date.now();
const pastTtl = () => { clock += 2 * 60_000; };
const fixture = remoteFixture(test, (url) => ({ up: { type: 'remote', url, metadataTtl: '1m', offlineAfter: 100 } }), { storageNow: () => clock });

test('a tag deleted upstream is dropped: 404 remembered, never served stale; its manifest stays by digest', async () => {
  const { distribution, proxy, wharf } = fixture;
  const image = makeImage();
  await seedImage(distribution.url, 'team/moving', image, 'v');
  const tagUrl = `${wharf.url}/v2/up/team/moving/manifests/v`;
  assert.is((await fetch(tagUrl)).status, 200);
  const deleted = await fetch(`${distribution.url}/v2/team/moving/manifests/${image.digest}`, { method: 'DELETE' });
  assert.is(deleted.status, 202);

  pastTtl();
  const gone = await fetch(tagUrl);
  assert.is(gone.status, 404);
  assert.is(await errorCode(gone), 'MANIFEST_UNKNOWN');
  proxy.reset();
  for (let i = 0; i < 3; i++) assert.is((await fetch(tagUrl, { method: 'HEAD' })).status, 404);
  assert.equal(proxy.counts, {}, 'the upstream 404 is remembered: nothing asked again');

  proxy.fault = 'down';
  try {
    pastTtl();
    const down = await fetch(tagUrl);
    assert.ok(down.status >= 500, `the deleted tag is not served stale (${down.status})`);
    assert.is(down.headers.get('warning'), null);
    const tags = await fetch(`${wharf.url}/v2/up/team/moving/tags/list`);
    assert.equal((await tags.json() as { tags: string[] }).tags, [], 'the deleted tag is not listed stale');
    const byDigest = await fetch(`${wharf.url}/v2/up/team/moving/manifests/${image.digest}`);
    assert.is(byDigest.status, 200, 'the manifest stays cached by digest');
  } finally {
    proxy.fault = 'none';
  }
});

test('a tag cached anew meanwhile (by another node) survives the upstream\'s 404 for the manifest it named before', async () => {
  const { distribution, proxy, wharf } = fixture;
  const [before, after] = [makeImage(), makeImage()];
  await seedImage(distribution.url, 'team/raced', before, 'v');
  const tagUrl = `${wharf.url}/v2/up/team/raced/manifests/v`;
  assert.is((await fetch(tagUrl)).status, 200);
  assert.is((await fetch(`${distribution.url}/v2/team/raced/manifests/${before.digest}`, { method: 'DELETE' })).status, 202);

  pastTtl();
  proxy.reset();
  let release!: () => void;
  proxy.holdManifests = new Promise((resolve) => { release = resolve; });
  const revalidation = fetch(tagUrl);
  try {
    // The revalidation has had its HEAD's 404 and waits for its GET's.
    await eventually('the revalidation asked for the manifest', async () => (proxy.counts['GET manifest'] ?? 0) === 1, 10_000);
    const other = await wharf.openMetadata();
    try {
      const image = { repo: 'up', name: 'team/raced' };
      await other.manifests.cache({ ...image, manifest: parseManifest(after.manifest), content: after.manifest, tag: 'v', now: clock });
      await other.tags.confirm(image, 'v', clock);
    } finally {
      await other.close();
    }
  } finally {
    proxy.holdManifests = null;
    release();
  }
  assert.is((await revalidation).status, 404);
  const kept = await fetch(tagUrl);
  assert.is(kept.status, 200, 'the tag, moved meanwhile, was not dropped');
  assert.is(kept.headers.get('docker-content-digest'), after.digest);
});

test.run();
