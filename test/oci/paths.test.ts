import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegistryError } from '../../src/oci/errors.js';
import { parseEndpoint } from '../../src/oci/paths.js';

const digest = `sha256:${'c'.repeat(64)}`;
const uuid = '0b7c3f4e-6a1d-4b8e-9f2a-1c2d3e4f5a6b';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as RegistryError).code;
  }
  return 'none';
}

test('every endpoint of the spec', () => {
  assert.equal(parseEndpoint(''), { kind: 'base' });
  assert.equal(parseEndpoint('_catalog'), { kind: 'catalog' });
  assert.equal(parseEndpoint('team/app/manifests/1.0'), { kind: 'manifest', name: 'team/app', reference: '1.0' });
  assert.equal(parseEndpoint(`app/manifests/${digest}`), { kind: 'manifest', name: 'app', reference: digest });
  assert.equal(parseEndpoint(`a/b/c/blobs/${digest}`), { kind: 'blob', name: 'a/b/c', digest });
  assert.equal(parseEndpoint('app/blobs/uploads/'), { kind: 'uploads', name: 'app' });
  assert.equal(parseEndpoint('app/blobs/uploads'), { kind: 'uploads', name: 'app' });
  assert.equal(parseEndpoint(`app/blobs/uploads/${uuid}`), { kind: 'upload', name: 'app', uuid });
  assert.equal(parseEndpoint('app/tags/list'), { kind: 'tags', name: 'app' });
  assert.equal(parseEndpoint(`app/referrers/${digest}`), { kind: 'referrers', name: 'app', digest });
});

test('the endpoint is read from the right, so names may contain endpoint words', () => {
  assert.equal(parseEndpoint('blobs/manifests/manifests/x'), { kind: 'manifest', name: 'blobs/manifests', reference: 'x' });
  assert.equal(parseEndpoint('tags/tags/list'), { kind: 'tags', name: 'tags' });
});

test('bad names, references, digests and upload ids get the spec codes', () => {
  assert.is(code(() => parseEndpoint('../etc/manifests/x')), 'NAME_INVALID');
  assert.is(code(() => parseEndpoint('Team/manifests/x')), 'NAME_INVALID');
  assert.is(code(() => parseEndpoint('manifests/x')), 'NAME_INVALID');
  assert.is(code(() => parseEndpoint('app/manifests/-bad')), 'MANIFEST_UNKNOWN', 'a read of what no reference names');
  assert.is(code(() => parseEndpoint('app/manifests/-bad', { method: 'PUT', path: '/v2/app/manifests/-bad' })), 'MANIFEST_INVALID');
  assert.is(code(() => parseEndpoint('app/blobs/sha256:xyz')), 'DIGEST_INVALID');
  assert.is(code(() => parseEndpoint('app/blobs/uploads/../../meta.db')), 'NAME_UNKNOWN');
  assert.is(code(() => parseEndpoint('app/blobs/uploads/..')), 'BLOB_UPLOAD_UNKNOWN');
  assert.is(code(() => parseEndpoint('app/blobs/uploads/not-a-uuid')), 'BLOB_UPLOAD_UNKNOWN');
  assert.is(code(() => parseEndpoint('app/nothing/here')), 'NAME_UNKNOWN');
});

test.run();
