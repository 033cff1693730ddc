import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { antMatch, fetchableUrl, urlAllowedBy } from '../../src/oci/ant.js';

/** Whether `patterns` allow `text` as a foreign-layer URL. */
const allows = (patterns: string[], text: string) => {
  const url = fetchableUrl(text);
  return url !== null && urlAllowedBy(patterns, url);
};

test('** allows every URL; **/host/** allows one host at any path', () => {
  assert.ok(allows(['**'], 'https://anything.example/x/y'));
  assert.ok(allows(['**/github.com/**'], 'https://github.com/org/repo/layer.tar.gz'));
  assert.not.ok(allows(['**/github.com/**'], 'https://github.com.evil.example/layer'));
  // Patterns match paths, so an unanchored host also matches it as a path segment elsewhere:
  // anchoring the scheme and host is the strict form.
  assert.ok(allows(['**/github.com/**'], 'https://evil.example/github.com/x'));
  assert.not.ok(allows(['https://github.com/**'], 'https://evil.example/github.com/x'));
  assert.ok(allows(['https://github.com/**'], 'https://github.com/org/layer'));
});

test('* stays within a segment, ? is one character', () => {
  assert.ok(allows(['https://*.example.com/**'], 'https://cdn.example.com/a/b'));
  assert.not.ok(allows(['https://*.example.com/*'], 'https://cdn.example.com/a/b'));
  assert.ok(allows(['https://host/layer-?.tgz'], 'https://host/layer-1.tgz'));
  assert.not.ok(allows(['https://host/layer-?.tgz'], 'https://host/layer-10.tgz'));
  assert.ok(allows(['**/a.example/**', '**/b.example/**'], 'http://b.example/x'));
  assert.not.ok(allows([], 'http://b.example/x'));
  assert.ok(antMatch('team/**', 'team/app/sub'), 'image names match as paths');
});

test('URLs match by scheme, host and path as they will be fetched, not as written', () => {
  const allow = ['http://*.allowed.example/**', 'http://*.anyport.example:*/**'];
  assert.ok(allows(allow, 'http://cdn.allowed.example/layer'));
  assert.ok(allows(allow, 'HTTP://CDN.Allowed.Example:80/layer'), 'scheme and host in any case, the default port');
  assert.ok(allows(allow, 'http://cdn.allowed.example/layer?signature=x#part'), 'the query is not matched');
  for (const bypass of [
    'http://127.0.0.1:5399\\.allowed.example/secret',
    'http://127.0.0.1:5399?.allowed.example/secret',
    'http://127.0.0.1:5399#.allowed.example/secret',
    'http://a.anyport.example:1@127.0.0.1:5399/secret',
    'http://cdn.allowed.example@127.0.0.1/secret',
    'http://127.0.0.1%3A5399%2F.allowed.example/secret',
    'http://[::1]:5399\\.allowed.example/secret',
    'http://cdn.allowed.example:8080/layer',
    'ftp://cdn.allowed.example/layer',
    'not a url',
  ]) assert.not.ok(allows(allow, bypass), bypass);
  assert.not.ok(allows(['https://host/layers/**'], 'https://host/layers/../private/x'), 'dot segments are resolved first');
  assert.not.ok(allows(['https://host/layers/**'], 'https://host/layers/%2e%2e/private/x'), 'encoded ones too');
  assert.ok(allows(['https://HOST:443/layers/**'], 'https://host/layers/x'), 'patterns are read the same way');
  assert.ok(allows(['http://[::1]:*/**'], 'http://[0:0::1]:5000/x'), 'IPv6 literals as the URL writes them');
  assert.is(fetchableUrl('http://host/a\\b#frag')?.href, 'http://host/a/b', 'what is fetched is what was matched');
});

test.run();
