import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf, isDigest, parseDigest } from '../../src/oci/digest.js';
import { isValidName, isValidRepositoryKey, isValidTag } from '../../src/oci/names.js';
import { acceptCacheLimits, accepts, cachedAcceptHeaders, parseAccept } from '../../src/oci/accept.js';

test('digests: sha256 and sha512 with exact hex lengths', () => {
  assert.ok(isDigest(`sha256:${'a'.repeat(64)}`));
  assert.ok(isDigest(`sha512:${'0'.repeat(128)}`));
  assert.not.ok(isDigest(`sha256:${'a'.repeat(63)}`));
  assert.not.ok(isDigest(`sha256:${'A'.repeat(64)}`));
  assert.not.ok(isDigest(`md5:${'a'.repeat(32)}`));
  assert.not.ok(isDigest(`sha256:../../${'a'.repeat(58)}`));
  assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`), { algorithm: 'sha512', hex: 'b'.repeat(128) });
  assert.is(digestOf(Buffer.from('')), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('names follow the spec grammar and never allow traversal', () => {
  for (const name of ['app', 'team/app', 'a.b/c_d/e__f/g-h', 'a--b', 'x/y/z/1']) assert.ok(isValidName(name), name);
  for (const name of ['', '/app', 'app/', 'a//b', '..', 'a/../b', 'App', 'a_', '_a', 'a___b', 'a/./b', 'a%2fb', 'a:b', 'x'.repeat(256)]) {
    assert.not.ok(isValidName(name), name);
  }
});

test('tags: up to 128 characters, no leading dot or dash', () => {
  assert.ok(isValidTag('latest'));
  assert.ok(isValidTag('v1.2.3-rc_1'));
  assert.ok(isValidTag('_x'));
  assert.ok(isValidTag('a'.repeat(128)));
  assert.not.ok(isValidTag('a'.repeat(129)));
  assert.not.ok(isValidTag('.hidden'));
  assert.not.ok(isValidTag('-x'));
  assert.not.ok(isValidTag('a/b'));
});

test('repository keys: lowercase DNS labels, no underscores', () => {
  assert.ok(isValidRepositoryKey('docker-local'));
  assert.ok(isValidRepositoryKey('hub2'));
  assert.not.ok(isValidRepositoryKey('docker_local'));
  assert.not.ok(isValidRepositoryKey('Docker'));
  assert.not.ok(isValidRepositoryKey('-x'));
  assert.not.ok(isValidRepositoryKey('x-'));
});

test('Accept: several header lines joined, parameters ignored, wildcards', () => {
  const joined = parseAccept('application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9');
  assert.ok(accepts(joined, 'application/vnd.docker.distribution.manifest.v2+json'));
  assert.not.ok(accepts(joined, 'application/vnd.oci.image.manifest.v1+json'));
  assert.ok(accepts(parseAccept(undefined), 'anything/at-all'));
  assert.ok(accepts(parseAccept('*/*'), 'application/vnd.oci.image.manifest.v1+json'));
});

test('Accept: parsed headers are kept within their bound, and each keeps its own answer', () => {
  const typeOf = (i: number) => `application/vnd.test.${i}+json`;
  const count = acceptCacheLimits.entries * 3;
  for (let i = 0; i < count; i++) {
    const accepted = parseAccept(`${typeOf(i)}, application/vnd.oci.image.index.v1+json`);
    assert.ok(accepts(accepted, typeOf(i)));
    assert.not.ok(accepts(accepted, typeOf(i + 1)));
    assert.ok(cachedAcceptHeaders() <= acceptCacheLimits.entries, `${cachedAcceptHeaders()} headers kept after ${i + 1}`);
  }
  // Asked again, after the cache was emptied and refilled: the same answers.
  for (let i = 0; i < count; i += 97) assert.ok(accepts(parseAccept(`${typeOf(i)}, application/vnd.oci.image.index.v1+json`), typeOf(i)));
  // A header over the length bound is answered, not kept.
  const before = cachedAcceptHeaders();
  const long = `${'application/x-padding, '.repeat(acceptCacheLimits.headerLength / 10)}${typeOf(-1)}`;
  assert.ok(accepts(parseAccept(long), typeOf(-1)));
  assert.not.ok(accepts(parseAccept(long), typeOf(-2)));
  assert.is(cachedAcceptHeaders(), before, 'a long header is not kept');
});

test.run();
