import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { remoteFixture } from '../helpers/upstream.js';

// An upstream that fails in the ways real ones do: 5xx answers, requests that never get an
// answer, and an outage while serveStale is off. Counts show what reached it.

// timeouts.response applies to every request of the suite: 1 s leaves a slow machine room for
// the answers that do come (a 404 retried for being late would fail "never retried").
const fixture = remoteFixture(test, (url) => ({
  strict: { type: 'remote', url, metadataTtl: 0, serveStale: false, offlineAfter: 100, timeouts: { response: '1s' } },
}));
test.before.each(() => {
  fixture.proxy.fault = 'none';
  fixture.proxy.reset();
});

const manifest = (name: string, reference: string) => fetch(`${fixture.wharf.url}/v2/strict/${name}/manifests/${reference}`, { headers: { Accept: OCI_MANIFEST } });
const manifestRequests = () => (fixture.proxy.counts['GET manifest'] ?? 0) + (fixture.proxy.counts['HEAD manifest'] ?? 0);

async function message(response: Response): Promise<string> {
  return ((await response.json()) as { errors: { message: string }[] }).errors[0]!.message;
}

test('a 5xx upstream is asked three times in all (two retries), then the client gets an error naming it', async () => {
  fixture.proxy.fault = 'unavailable';
  const response = await manifest('team/app', '1.0');
  assert.ok(response.status >= 500, `status ${response.status}`);
  assert.match(await message(response), fixture.proxy.url);
  assert.is(manifestRequests(), 3);
});

test('a 4xx is an answer, not a failure: never retried', async () => {
  const response = await manifest('team/absent', '1.0');
  assert.is(response.status, 404);
  assert.is(await errorCode(response), 'MANIFEST_UNKNOWN');
  assert.is(manifestRequests(), 1);
  // A blob the upstream does not have: its temp file (made while asking) is gone again.
  const blob = await fetch(`${fixture.wharf.url}/v2/strict/team/absent/blobs/sha256:${'0'.repeat(64)}`);
  assert.is(blob.status, 404);
  assert.is(await errorCode(blob), 'BLOB_UNKNOWN');
  assert.is(fixture.proxy.counts['GET blob'], 1);
  assert.equal(await readdir(join(fixture.wharf.dataDir, 'tmp')), []);
});

test('an upstream that never answers is cut at timeouts.response, named in the error, and not asked again (the client waited the limit once, not three times)', async () => {
  fixture.proxy.fault = 'stall';
  const response = await manifest('team/app', '2.0');
  assert.is(response.status, 502);
  assert.match(await message(response), 'no answer within timeouts.response (1000 ms)');
  assert.is(manifestRequests(), 1);
});

test('serveStale: false: during an outage a cached tag fails like the upstream; content by digest still serves', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'team/cached', image, '1');
  assert.is((await manifest('team/cached', '1')).status, 200);
  const layer = image.layers[0]!;
  assert.is((await fetch(`${fixture.wharf.url}/v2/strict/team/cached/blobs/${layer.digest}`)).status, 200);
  fixture.proxy.fault = 'down';
  const byTag = await manifest('team/cached', '1');
  assert.is(byTag.status, 502, 'no stale answer');
  assert.is(byTag.headers.get('warning'), null);
  // What a digest names cannot go stale: it is served from the cache with the upstream down.
  assert.is((await manifest('team/cached', image.digest)).status, 200);
  const blob = await fetch(`${fixture.wharf.url}/v2/strict/team/cached/blobs/${layer.digest}`);
  assert.is(blob.status, 200);
  assert.equal(Buffer.from(await blob.arrayBuffer()), layer.bytes);
});

test.run();
