import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../../src/config/validate.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { TokenCache } from '../../src/upstream/tokens.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// README, "Remote repositories": the claims no other suite checked. A remote repository in front
// of a real Distribution through the counting pass-through, on a clock the test moves.

let distribution: Distribution;
let proxy: CountingProxy;
let wharf: TestServer;
let accessLog = '';
const log: string[] = [];
let clock = Date.now();

test.before(async () => {
  distribution = await startDistribution();
  proxy = await startCountingProxy(distribution.url);
  wharf = await startWharf({
    repositories: { 'docker-remote': { type: 'remote', url: proxy.url, metadataTtl: '1m', offlineAfter: 100 } },
    accessLog: (text) => { accessLog += text; },
    log: (line) => log.push(line),
    storageNow: () => clock,
  });
});
test.after(async () => {
  await wharf.cleanup();
  await proxy.stop();
  await distribution.stop();
});
test.before.each(() => {
  proxy.fault = 'none';
  proxy.rateLimit = null;
  proxy.reset();
});

const remote = (name: string, suffix: string) => `${wharf.url}/v2/docker-remote/${name}/${suffix}`;

/** docker-remote's counter `name` in /metrics (0 when absent). */
async function counter(name: string): Promise<number> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  const match = new RegExp(`^wharf_${name}\\{repository="docker-remote"\\} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** The access-log line of the `n`th request (from 1) whose URL ends with `suffix`, once written. */
async function accessLine(suffix: string, n: number): Promise<string> {
  const lines = () => accessLog.split('\n').filter((line) => line.includes(`${suffix}" `));
  await eventually(`access-log line ${n} for ${suffix}`, async () => lines().length >= n, 5_000);
  return lines()[n - 1]!;
}

test('a warm blob is a HIT: the access log says so and wharf_cache_hits_total counts it', async () => {
  const image = makeImage({ layers: 1 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/hit', image, '1');
  const stored = await counter('storage_bytes');
  assert.is((await (await fetch(remote('team/hit', `blobs/${layer.digest}`))).arrayBuffer()).byteLength, layer.bytes.length);
  assert.match(await accessLine(`/blobs/${layer.digest}`, 1), / MISS$/);
  // The client has the bytes once they verify; the commit follows. Until then a pull joins the fetch.
  await eventually('the blob is committed', async () => (await counter('storage_bytes')) === stored + layer.bytes.length, 5_000);
  const hits = await counter('cache_hits_total');
  assert.is((await (await fetch(remote('team/hit', `blobs/${layer.digest}`))).arrayBuffer()).byteLength, layer.bytes.length);
  assert.match(await accessLine(`/blobs/${layer.digest}`, 2), / HIT$/);
  assert.is(await counter('cache_hits_total'), hits + 1);
  assert.is(proxy.counts['GET blob'], 1, 'the HIT did not reach the upstream');
});

test('a tag served stale while the upstream is down is STALE in the access log and in wharf_cache_stale_total', async () => {
  const image = makeImage();
  await seedImage(distribution.url, 'team/stale', image, '1');
  const accept = { Accept: OCI_MANIFEST };
  assert.is((await fetch(remote('team/stale', 'manifests/1'), { headers: accept })).status, 200);
  const stale = await counter('cache_stale_total');
  clock += 2 * 60_000;
  proxy.fault = 'down';
  const answer = await fetch(remote('team/stale', 'manifests/1'), { headers: accept });
  assert.is(answer.status, 200);
  assert.match(answer.headers.get('warning') ?? '', /^110 wharf "Response is Stale/);
  assert.match(await accessLine('/team/stale/manifests/1', 2), / STALE$/);
  assert.is(await counter('cache_stale_total'), stale + 1);
});

test('an upstream 404 is remembered for 30 seconds, then asked again', async () => {
  const probe = async () => assert.is((await fetch(remote('team/missing', 'manifests/nope'), { method: 'HEAD' })).status, 404);
  const asked = () => (proxy.counts['GET manifest'] ?? 0) + (proxy.counts['HEAD manifest'] ?? 0);
  await probe();
  const first = asked();
  assert.ok(first >= 1, 'the first probe asks the upstream');
  clock += 29_000;
  await probe();
  assert.is(asked(), first, '29 s later the 404 is still remembered');
  clock += 2_000;
  await probe();
  assert.is(asked(), 2 * first, 'past 30 s the upstream is asked again');
});

test('ratelimit-remaining: tracked in /metrics, and logged once when it drops under 10', async () => {
  const image = makeImage();
  await seedImage(distribution.url, 'team/limited', image, '1');
  const nearlySpent = () => log.filter((line) => line.includes('rate limit nearly spent'));
  const pull = async (tag: string) => assert.is((await fetch(remote('team/limited', `manifests/${tag}`), { headers: { Accept: OCI_MANIFEST } })).status, 200);
  proxy.rateLimit = 10;
  await pull('1');
  assert.is(await counter('upstream_ratelimit_remaining'), 10);
  assert.equal(nearlySpent(), [], 'at 10 nothing is logged');
  proxy.rateLimit = 9;
  clock += 2 * 60_000;
  await pull('1');
  assert.is(await counter('upstream_ratelimit_remaining'), 9);
  assert.is(nearlySpent().length, 1);
  assert.match(nearlySpent()[0]!, 'docker-remote: upstream');
  assert.match(nearlySpent()[0]!, '9 pulls remaining');
  proxy.rateLimit = 8;
  clock += 2 * 60_000;
  await pull('1');
  assert.is(await counter('upstream_ratelimit_remaining'), 8);
  assert.is(nearlySpent().length, 1, 'logged when it crosses under 10, not on every answer');
});

test('cached manifests of a remote repository are cache entries: one whose tag moved upstream outlives a collection', async () => {
  const first = makeImage();
  const second = makeImage();
  const accept = { Accept: OCI_MANIFEST };
  await seedImage(distribution.url, 'team/moving', first, 'latest');
  assert.is((await fetch(remote('team/moving', 'manifests/latest'), { headers: accept })).headers.get('docker-content-digest'), first.digest);
  await seedImage(distribution.url, 'team/moving', second, 'latest');
  clock += 2 * 60_000;
  assert.is((await fetch(remote('team/moving', 'manifests/latest'), { headers: accept })).headers.get('docker-content-digest'), second.digest);
  clock += 2 * 3_600_000; // past gc.grace (1 h)
  const summary = await wharf.collectGarbage();
  assert.is(summary.manifests, 0, 'no cached manifest is collected');
  proxy.fault = 'down';
  const old = await fetch(remote('team/moving', `manifests/${first.digest}`), { headers: accept });
  assert.is(old.status, 200, 'the manifest no tag names any more is still served, from the cache');
  assert.is(old.headers.get('docker-content-digest'), first.digest);
});

test('not yet: foreignLayers.rewriteManifests is not a setting (refused, naming the key)', () => {
  const load = () => validateConfig({ repositories: { hub: { type: 'remote', url: 'https://registry-1.docker.io', foreignLayers: { cache: true, rewriteManifests: true } } } }, { baseDir: process.cwd() });
  assert.throws(load, /repositories\.hub\.foreignLayers.*rewriteManifests|rewriteManifests.*repositories\.hub\.foreignLayers/);
});

test('upstream tokens are cached per realm, service and scope until expires_in (300 s here, renewed 5 s early)', async () => {
  proxy.bearer = { user: 'puller', password: 'pull-secret' };
  let now = 1_000_000;
  const tokens = new TokenCache({ now: () => now });
  const ask = (scope: string) => tokens.get({ realm: `${proxy.url}/token`, service: 'test-registry', scope, credentials: 'puller:pull-secret' });
  const fetched = () => proxy.counts['GET token'] ?? 0;
  try {
    const first = await ask('repository:team/a:pull');
    assert.is(fetched(), 1);
    assert.is(await ask('repository:team/a:pull'), first, 'reused');
    assert.not.equal(await ask('repository:team/b:pull'), first, 'another scope, another token');
    assert.is(fetched(), 2);
    now += 294_000;
    assert.is(await ask('repository:team/a:pull'), first, 'still valid at 294 s');
    assert.is(fetched(), 2);
    now += 2_000;
    assert.not.equal(await ask('repository:team/a:pull'), first, 'renewed past 295 s');
    assert.is(fetched(), 3);
  } finally {
    proxy.bearer = null;
  }
});

test('a client that disconnects does not stop the download: the blob is committed, and the next pull is a HIT', async () => {
  const image = makeImage({ layers: 1, layerBytes: 4 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/left', image, '1');
  const stored = await counter('storage_bytes');
  let release = () => undefined as void;
  proxy.holdBlobs = new Promise((resolve) => { release = resolve; });
  try {
    const leaving = new AbortController();
    const response = await fetch(remote('team/left', `blobs/${layer.digest}`), { signal: leaving.signal });
    assert.is(response.status, 200);
    leaving.abort();
    // The server has seen the client go before the upstream sends more than its first piece.
    assert.match(await accessLine(`/blobs/${layer.digest}`, 1), / aborted$/);
    release();
    await eventually('the download goes on to the commit', async () => (await counter('storage_bytes')) === stored + layer.bytes.length, 10_000);
  } finally {
    proxy.holdBlobs = null;
    release();
  }
  const again = await fetch(remote('team/left', `blobs/${layer.digest}`));
  assert.is(Buffer.from(await again.arrayBuffer()).equals(layer.bytes), true);
  assert.match(await accessLine(`/blobs/${layer.digest}`, 2), / HIT$/);
  assert.is(proxy.counts['GET blob'], 1, 'fetched from the upstream once');
});

test.run();
