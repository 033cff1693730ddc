import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allowedBy, antMatch } from '../../src/oci/ant.js';

test('** allows everything; **/host/** allows one host at any path', () => {
  assert.ok(antMatch('**', 'https://anything.example/x/y'));
  assert.ok(antMatch('**/github.com/**', 'https://github.com/org/repo/layer.tar.gz'));
  assert.not.ok(antMatch('**/github.com/**', 'https://github.com.evil.example/layer'));
  // Patterns match paths, so an unanchored host also matches it as a path segment elsewhere:
  // anchoring the scheme and host is the strict form.
  assert.ok(antMatch('**/github.com/**', 'https://evil.example/github.com/x'));
  assert.not.ok(antMatch('https://github.com/**', 'https://evil.example/github.com/x'));
  assert.ok(antMatch('https://github.com/**', 'https://github.com/org/layer'));
});

test('* stays within a segment, ? is one character', () => {
  assert.ok(antMatch('https://*.example.com/**', 'https://cdn.example.com/a/b'));
  assert.not.ok(antMatch('https://*.example.com/*', 'https://cdn.example.com/a/b'));
  assert.ok(antMatch('https://host/layer-?.tgz', 'https://host/layer-1.tgz'));
  assert.not.ok(antMatch('https://host/layer-?.tgz', 'https://host/layer-10.tgz'));
  assert.ok(allowedBy(['**/a.example/**', '**/b.example/**'], 'http://b.example/x'));
  assert.not.ok(allowedBy([], 'http://b.example/x'));
});

test.run();
