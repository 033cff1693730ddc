import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { summarizeImage } from '../../src/oci/image-config.js';
import { platformTagName, platformTagsOf } from '../../src/repos/image-info.js';

// The pure parts of image info and platform tags: what a config without history, a config that
// is not JSON and odd platforms give.

const manifest = (layers: number[]) => Buffer.from(JSON.stringify({
  schemaVersion: 2,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 100 },
  layers: layers.map((size, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${String(i).repeat(64)}`, size })),
}));

test('without a history, each layer is one entry; sizes add up with the config', () => {
  const summary = summarizeImage(manifest([10, 20]), Buffer.from(JSON.stringify({ os: 'linux', architecture: 'arm64', variant: 'v8' })));
  assert.is(summary.size, 130);
  assert.equal([summary.os, summary.architecture, summary.variant], ['linux', 'arm64', 'v8']);
  assert.equal(summary.details.history.map((h) => [h.digest, h.size, h.emptyLayer]), [[`sha256:${'0'.repeat(64)}`, 10, false], [`sha256:${'1'.repeat(64)}`, 20, false]]);
  assert.equal(summary.details.entrypoint, null);
  assert.equal(summary.labels, {});
});

test('a config that is not JSON (an artifact) gives sizes and layers but no details; non-string labels are dropped', () => {
  const artifact = summarizeImage(manifest([5]), Buffer.from('\u0000binary'));
  assert.is(artifact.size, 105);
  assert.is(artifact.os, null);
  const odd = summarizeImage(manifest([]), Buffer.from(JSON.stringify({ config: { Labels: { a: 'x', b: 3, c: null } } })));
  assert.equal(odd.labels, { a: 'x' });
});

test('platform tag names: os-arch[-variant]; none for unknown platforms or names beyond the tag grammar', () => {
  assert.is(platformTagName('1.0', { os: 'linux', architecture: 'arm', variant: 'v7' }), '1.0-linux-arm-v7');
  assert.is(platformTagName('1.0', { os: 'unknown', architecture: 'unknown' }), null);
  assert.is(platformTagName('1.0', undefined), null);
  assert.is(platformTagName('x'.repeat(120), { os: 'linux', architecture: 'amd64' }), null);
  const children = [
    { mediaType: 'm', digest: 'sha256:a', size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: 'm', digest: 'sha256:b', size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: 'm', digest: 'sha256:c', size: 1, platform: { os: 'windows', architecture: 'amd64' } },
  ];
  assert.equal(platformTagsOf('v1', children), [{ tag: 'v1-linux-amd64', digest: 'sha256:a' }, { tag: 'v1-windows-amd64', digest: 'sha256:c' }]);
});

test.run();
