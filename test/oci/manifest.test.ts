import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegistryError } from '../../src/oci/errors.js';
import { maxManifestBytes, parseManifest } from '../../src/oci/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

function failure(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (error) {
    return error as RegistryError;
  }
  throw new Error('expected a failure');
}

test('an OCI image manifest: blobs are config and layers, foreign layers excluded', () => {
  const parsed = parseManifest(bytes({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 2 },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 3 },
      { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('c'), size: 3, urls: ['https://x/y'] },
    ],
  }));
  assert.is(parsed.kind, 'image');
  assert.equal(parsed.blobs, [d('a'), d('b')]);
  assert.is(parsed.artifactType, 'application/vnd.oci.image.config.v1+json');
});

test('media type comes from the body, else Content-Type, else the shape', () => {
  const index = { schemaVersion: 2, manifests: [{ mediaType: DOCKER_MANIFEST, digest: d('e'), size: 5 }] };
  assert.is(parseManifest(bytes(index)).mediaType, OCI_INDEX);
  assert.is(parseManifest(bytes(index), DOCKER_MANIFEST_LIST).mediaType, DOCKER_MANIFEST_LIST);
  assert.is(parseManifest(bytes({ ...index, mediaType: OCI_INDEX }), OCI_INDEX).children[0]!.digest, d('e'));
  assert.is(failure(() => parseManifest(bytes({ ...index, mediaType: OCI_INDEX }), OCI_MANIFEST)).code, 'MANIFEST_INVALID');
});

test('artifacts: artifactType and subject are kept', () => {
  const parsed = parseManifest(bytes({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: 'application/vnd.example.sbom',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: d('a'), size: 2 },
    layers: [],
    subject: { mediaType: OCI_MANIFEST, digest: d('f'), size: 10 },
  }));
  assert.is(parsed.artifactType, 'application/vnd.example.sbom');
  assert.is(parsed.subject!.digest, d('f'));
});

test('schema1 is recognised by schemaVersion', () => {
  const parsed = parseManifest(bytes({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [{ blobSum: d('a') }, { blobSum: d('a') }] }));
  assert.is(parsed.mediaType, DOCKER_SCHEMA1);
  assert.equal(parsed.blobs, [d('a')]);
});

test('invalid manifests say what is wrong', () => {
  assert.match(failure(() => parseManifest(Buffer.from('{nope'))).message, 'not valid JSON');
  assert.match(failure(() => parseManifest(bytes({ schemaVersion: 3 }))).message, 'schemaVersion');
  assert.match(failure(() => parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: 'sha256:1', size: 1 } }))).message, 'config.digest');
  assert.match(failure(() => parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: d('a'), size: -1 } }))).message, 'config.size');
  assert.match(failure(() => parseManifest(bytes({ schemaVersion: 2, mediaType: 'text/plain' }))).message, 'unsupported');
  const tooLarge = failure(() => parseManifest(Buffer.alloc(maxManifestBytes + 1, 32)));
  assert.is(tooLarge.status, 413);
});

test.run();
