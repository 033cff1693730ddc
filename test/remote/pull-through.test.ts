import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';
import { tempDir } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';
import { remoteFixture } from '../helpers/upstream.js';

// A remote repository in front of a real CNCF Distribution, with a counting pass-through between
// them: every scenario asserts what reached the upstream.

let accessLog = '';
// The remote's clock (its metadataTtl), moved past the TTL instead of waiting for it.
let clock = Date.now();
const pastTtl = () => { clock += 2 * 60_000; };
const fixture = remoteFixture(test, (url) => ({
  'docker-local': { type: 'local' },
  'docker-remote': { type: 'remote', url, metadataTtl: '1m', offlineAfter: 100 },
}), { accessLog: (text) => { accessLog += text; }, storageNow: () => clock });
test.before.each(() => {
  fixture.proxy.fault = 'none';
  fixture.proxy.rateLimit = null;
  fixture.proxy.reset();
});

/** The counters /metrics reports for docker-remote. */
async function metrics(): Promise<Record<string, number>> {
  const text = await (await fetch(`${fixture.wharf.url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^wharf_(\w+)\{repository="docker-remote"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
/** The whole body, or null when the transfer broke (before or after the headers). */
async function download(url: string): Promise<Buffer | null> {
  try {
    return Buffer.from(await (await fetch(url)).arrayBuffer());
  } catch {
    return null;
  }
}

const remote = (name: string, suffix: string) => `${fixture.wharf.url}/v2/docker-remote/${name}/${suffix}`;

test('cold pull fetches from the upstream once; the warm pull sends no blob request upstream', async () => {
  const image = makeImage({ layers: 2, layerBytes: 100_000 });
  await seedImage(fixture.distribution.url, 'team/app', image, '1.0');
  const host = fixture.wharf.url.replace('http://', '');
  const cold = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/docker-remote/team/app:1.0`, `oci:${cold}:x`]);
  assert.is(fixture.proxy.counts['GET blob'], 3, 'config and two layers, once each');
  fixture.proxy.reset();
  const warm = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/docker-remote/team/app:1.0`, `oci:${warm}:x`]);
  assert.is(fixture.proxy.counts['GET blob'] ?? 0, 0);
  assert.is(fixture.proxy.counts['GET manifest'] ?? 0, 0, 'the tag is still fresh');
  assert.is(fixture.proxy.counts['HEAD manifest'] ?? 0, 0, 'within metadataTtl not even revalidated');
  for (const layer of image.layers) {
    const response = await fetch(remote('team/app', `blobs/${layer.digest}`));
    assert.equal(Buffer.from(await response.arrayBuffer()), layer.bytes);
  }
});

test('20 concurrent cold pulls of one large layer cost exactly one upstream GET', async () => {
  const image = makeImage({ layers: 1, layerBytes: 24 << 20 });
  const layer = image.layers[0]!;
  await seedImage(fixture.distribution.url, 'team/big', image, 'v1');
  fixture.proxy.reset();
  const before = await metrics();
  // The upstream's body is held after its first chunk until all 20 pulls have started or joined
  // the fetch: none comes after it, however slow the machine (they would be cache hits).
  let release!: () => void;
  fixture.proxy.holdBlobs = new Promise((resolve) => { release = resolve; });
  let bodies: Buffer[];
  try {
    const pulls = Promise.all(Array.from({ length: 20 }, async () => {
      const response = await fetch(remote('team/big', `blobs/${layer.digest}`));
      assert.is(response.status, 200);
      return Buffer.from(await response.arrayBuffer());
    }));
    pulls.catch(() => undefined); // awaited below, where a failure is reported
    const started = (counters: Record<string, number>) => (counters.cache_misses_total ?? 0) + (counters.cache_joins_total ?? 0);
    const inFlight = async () => started(await metrics()) - started(before);
    await eventually('all 20 pulls started or joined a fetch', async () => await inFlight() >= 20);
    release();
    bodies = await pulls;
  } finally {
    fixture.proxy.holdBlobs = null;
    release();
  }
  assert.is(fixture.proxy.counts['GET blob'], 1);
  assert.is(fixture.proxy.blobBytes(), layer.bytes.length, 'the blob crossed from the upstream once');
  for (const body of bodies) assert.is(sha256(body), layer.digest);
  const after = await metrics();
  const delta = (name: string) => after[name]! - (before[name] ?? 0);
  assert.is(delta('cache_misses_total'), 1);
  assert.is(delta('cache_joins_total'), 19, 'the others joined the download');
  assert.is(delta('upstream_bytes_total'), layer.bytes.length);
  assert.is(delta('served_bytes_total'), 20 * layer.bytes.length);
  const lines = accessLog.split('\n').filter((line) => line.includes(`/blobs/${layer.digest}`));
  assert.is(lines.filter((line) => line.endsWith(' MISS')).length, 1, 'the access log marks the one MISS');
  assert.ok(lines.some((line) => line.endsWith(' JOIN')), 'and the JOINs');
});

test('after metadataTtl a tag is revalidated with HEAD; GET only when the digest changed', async () => {
  const first = makeImage();
  await seedImage(fixture.distribution.url, 'team/tagged', first, 'latest');
  const accept = { Accept: OCI_MANIFEST };
  assert.is((await fetch(remote('team/tagged', 'manifests/latest'), { headers: accept })).headers.get('docker-content-digest'), first.digest);
  assert.is(fixture.proxy.counts['GET manifest'], 1);
  pastTtl();
  fixture.proxy.reset();
  assert.is((await fetch(remote('team/tagged', 'manifests/latest'), { headers: accept })).headers.get('docker-content-digest'), first.digest);
  assert.is(fixture.proxy.counts['HEAD manifest'], 1);
  assert.is(fixture.proxy.counts['GET manifest'] ?? 0, 0, 'unchanged: no GET');
  const second = makeImage();
  await seedImage(fixture.distribution.url, 'team/tagged', second, 'latest');
  pastTtl();
  fixture.proxy.reset();
  assert.is((await fetch(remote('team/tagged', 'manifests/latest'), { headers: accept })).headers.get('docker-content-digest'), second.digest);
  assert.is(fixture.proxy.counts['HEAD manifest'], 1);
  assert.is(fixture.proxy.counts['GET manifest'], 1, 'changed: fetched again');
});

test('with the upstream down, a cached image still pulls with skopeo, tags served stale with a Warning', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'team/offline', image, '1');
  const host = fixture.wharf.url.replace('http://', '');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/docker-remote/team/offline:1`, `oci:${await tempDir('wharf-oci-out-')}:x`]);
  pastTtl();
  fixture.proxy.fault = 'down';
  const stale = await fetch(remote('team/offline', 'manifests/1'), { headers: { Accept: OCI_MANIFEST } });
  assert.is(stale.status, 200);
  assert.match(stale.headers.get('warning') ?? '', /^110 wharf "Response is Stale/);
  assert.not.match(stale.headers.get('warning') ?? '', fixture.proxy.url, 'the upstream is not named to callers');
  const out = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/docker-remote/team/offline:1`, `oci:${out}:x`]);
  const never = await fetch(remote('team/never-seen', 'manifests/1'));
  assert.is(never.status, 502);
  const body = await never.json() as { errors: { message: string }[] };
  assert.match(body.errors[0]!.message, fixture.proxy.url, 'the error names the upstream');
});

test('an upstream stream cut mid-blob commits nothing and aborts the client; the next pull succeeds', async () => {
  const image = makeImage({ layers: 1, layerBytes: 2 << 20 });
  const layer = image.layers[0]!;
  await seedImage(fixture.distribution.url, 'team/cut', image, '1');
  fixture.proxy.fault = 'cut-blob';
  assert.is(await download(remote('team/cut', `blobs/${layer.digest}`)), null, 'the client sees a broken transfer, not a short body');
  assert.not.ok((await storedBlobs(fixture.wharf)).includes(layer.digest));
  // The client is cut as soon as the upstream breaks; the spool file goes right after.
  const spool = join(fixture.wharf.dataDir, 'tmp');
  await eventually('the spool file is gone', async () => (await readdir(spool)).length === 0);
  fixture.proxy.fault = 'none';
  const good = await fetch(remote('team/cut', `blobs/${layer.digest}`));
  assert.is(sha256(Buffer.from(await good.arrayBuffer())), layer.digest);
});

test('an upstream that sends wrong bytes commits nothing and never hands the client the whole wrong blob', async () => {
  const image = makeImage({ layers: 1, layerBytes: 300_000 });
  const layer = image.layers[0]!;
  await seedImage(fixture.distribution.url, 'team/corrupt', image, '1');
  fixture.proxy.fault = 'corrupt-blob';
  assert.is(await download(remote('team/corrupt', `blobs/${layer.digest}`)), null, 'the transfer is aborted');
  fixture.proxy.fault = 'none';
  assert.is((await fetch(remote('team/corrupt', `blobs/${layer.digest}`), { method: 'HEAD' })).status, 200);
  const good = await fetch(remote('team/corrupt', `blobs/${layer.digest}`));
  assert.is(sha256(Buffer.from(await good.arrayBuffer())), layer.digest);
  assert.is(fixture.proxy.counts['GET blob'], 2, 'fetched again: the bad copy was not kept');
});

test('Range works cold (from the growing download) and warm (206 from disk); If-Range with another validator gets the whole blob', async () => {
  const image = makeImage({ layers: 1, layerBytes: 1 << 20 });
  const layer = image.layers[0]!;
  await seedImage(fixture.distribution.url, 'team/ranged', image, '1');
  const cold = await fetch(remote('team/ranged', `blobs/${layer.digest}`), { headers: { Range: 'bytes=1000-1999' } });
  assert.is(cold.status, 206);
  assert.equal(Buffer.from(await cold.arrayBuffer()), layer.bytes.subarray(1000, 2000));
  // The fill goes on after the range is sent: the warm request comes once it has committed.
  await eventually('the cold fill committed', async () => (await storedBlobs(fixture.wharf)).includes(layer.digest));
  const warm = await fetch(remote('team/ranged', `blobs/${layer.digest}`), { headers: { Range: 'bytes=-10' } });
  assert.is(warm.status, 206);
  assert.equal(Buffer.from(await warm.arrayBuffer()), layer.bytes.subarray(layer.bytes.length - 10));
  // If-Range (RFC 9110 §13.1.5): the range holds for the blob's own ETag; any other validator gets the whole blob.
  const same = await fetch(remote('team/ranged', `blobs/${layer.digest}`), { headers: { Range: 'bytes=0-9', 'If-Range': `"${layer.digest}"` } });
  assert.is(same.status, 206);
  assert.equal(Buffer.from(await same.arrayBuffer()), layer.bytes.subarray(0, 10));
  for (const validator of ['"other"', `W/"${layer.digest}"`, 'Tue, 01 Dec 2026 10:00:00 GMT']) {
    const other = await fetch(remote('team/ranged', `blobs/${layer.digest}`), { headers: { Range: 'bytes=0-9', 'If-Range': validator } });
    assert.is(other.status, 200, validator);
    assert.equal(Buffer.from(await other.arrayBuffer()), layer.bytes, validator);
  }
  assert.is(fixture.proxy.counts['GET blob'], 1);
});

test('Docker Hub rate limits: remaining pulls recorded in /metrics; 429 surfaces as TOOMANYREQUESTS with its message', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'team/limited', image, '1');
  fixture.proxy.rateLimit = 42;
  assert.is((await fetch(remote('team/limited', 'manifests/1'))).status, 200);
  assert.is((await metrics()).upstream_ratelimit_remaining, 42);
  fixture.proxy.rateLimit = 0;
  const refused = await fetch(remote('team/limited', 'manifests/2'));
  assert.is(refused.status, 429);
  const body = await refused.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'TOOMANYREQUESTS');
  assert.match(body.errors[0]!.message, 'You have reached your pull rate limit.');
  assert.is(fixture.proxy.counts['GET manifest'], 2, 'a 4xx is not retried');
});

test('pushes to a remote repository are refused with a message that says where to push', async () => {
  const response = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/app/blobs/uploads/`, { method: 'POST' });
  assert.is(response.status, 405);
  const body = await response.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'UNSUPPORTED');
  assert.match(body.errors[0]!.message, 'push to a local repository');
  const manifest = await fetch(remote('team/app', 'manifests/x'), { method: 'PUT', body: '{}' });
  assert.is(await errorCode(manifest), 'UNSUPPORTED');
});

test('an upstream 404 is remembered for a while: probing a missing tag twice asks the upstream once', async () => {
  for (let i = 0; i < 2; i++) {
    const response = await fetch(remote('team/nothing', 'manifests/missing'));
    assert.is(response.status, 404);
    assert.is(await errorCode(response), 'MANIFEST_UNKNOWN');
  }
  assert.is(fixture.proxy.counts['GET manifest'], 1);
});

test('DELETE on a cached tag removes it from the cache; the next pull fetches it again', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'team/evict', image, '1');
  await fetch(remote('team/evict', 'manifests/1'));
  assert.is((await fetch(remote('team/evict', 'manifests/1'), { method: 'DELETE' })).status, 202);
  fixture.proxy.reset();
  assert.is((await fetch(remote('team/evict', 'manifests/1'))).status, 200);
  assert.is(fixture.proxy.counts['GET manifest'], 1);
});

test.run();
