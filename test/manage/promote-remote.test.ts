import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { eventually } from '../helpers/auth.js';
import { promote, tagDigest } from '../helpers/manage.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { remoteFixture } from '../helpers/upstream.js';

// Promotion out of a remote repository's cache: a copy of what was pulled through it (no move:
// a cache is not a source of truth), refused while the cache does not hold every layer, since
// the target would otherwise hold a manifest whose blobs it cannot serve.

const fixture = remoteFixture(test, (url) => ({
  'docker-remote': { type: 'remote', url },
  'docker-local': { type: 'local' },
}));
const base = () => fixture.wharf.url;

test('copy from a remote cache: refused until every blob is cached, then the target serves the image without the upstream', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'library/app', image, '1');
  await (await fetch(`${base()}/v2/docker-remote/library/app/manifests/1`)).arrayBuffer();
  const body = { targetRepo: 'docker-local', dockerRepository: 'library/app', targetDockerRepository: 'vendored/app', tag: '1', copy: true };
  const early = await promote(base(), 'docker-remote', body);
  assert.is(early.status, 400);
  assert.is(await errorCode(early), 'MANIFEST_BLOB_UNKNOWN');
  assert.is(await tagDigest(base(), 'docker-local/vendored/app/manifests/1'), null, 'nothing was promoted');
  for (const item of [image.config, ...image.layers]) await (await fetch(`${base()}/v2/docker-remote/library/app/blobs/${item.digest}`)).arrayBuffer();
  // A download is linked into the cache just after its last byte is sent.
  await eventually('every blob is cached and the copy succeeds', async () => (await promote(base(), 'docker-remote', body)).status === 200);
  fixture.proxy.reset();
  for (const item of [image.config, ...image.layers]) {
    const response = await fetch(`${base()}/v2/docker-local/vendored/app/blobs/${item.digest}`);
    const body = Buffer.from(await response.arrayBuffer());
    assert.ok(body.equals(item.bytes), `${item.digest}: ${response.status}, ${body.length} of ${item.bytes.length} bytes: ${body.subarray(0, 200).toString()}`);
  }
  assert.is(await tagDigest(base(), 'docker-local/vendored/app/manifests/1'), image.digest);
  assert.equal(fixture.proxy.counts, {}, 'the upstream was not asked');
});

test('a move out of a remote repository is refused: its cache can be copied, not moved', async () => {
  const response = await promote(base(), 'docker-remote', { targetRepo: 'docker-local', dockerRepository: 'library/app', tag: '1' });
  assert.is(response.status, 400);
  assert.is(await errorCode(response), 'UNSUPPORTED');
});

test.run();
