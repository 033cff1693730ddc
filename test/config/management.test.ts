import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/validate.js';

// The management keys of a local repository: maxUniqueTags (0 or absent: no limit) and platformTags.

function problem(local: Record<string, unknown>): string {
  try {
    validateConfig({ repositories: { 'docker-local': { type: 'local', ...local } } }, { baseDir: '/' });
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

test('defaults: no tag limit, no platform tags; given values are kept', () => {
  const plain = validateConfig({ repositories: { 'docker-local': { type: 'local' } } }, { baseDir: '/' }).repositories['docker-local'];
  assert.equal(plain, { type: 'local', blockSchema1: true, gc: { untagged: 'delete' }, maxUniqueTags: 0, platformTags: false });
  const set = validateConfig({ repositories: { 'docker-local': { type: 'local', maxUniqueTags: 10, platformTags: true } } }, { baseDir: '/' }).repositories['docker-local'];
  assert.equal(set, { type: 'local', blockSchema1: true, gc: { untagged: 'delete' }, maxUniqueTags: 10, platformTags: true });
});

test('bad values name their key', () => {
  assert.match(problem({ maxUniqueTags: -1 }), 'repositories.docker-local.maxUniqueTags: expected a whole number of tags per image, 0 for no limit, got number -1');
  assert.match(problem({ maxUniqueTags: 2.5 }), 'repositories.docker-local.maxUniqueTags');
  assert.match(problem({ maxUniqueTags: 'three' }), 'repositories.docker-local.maxUniqueTags');
  assert.match(problem({ platformTags: 'yes' }), 'repositories.docker-local.platformTags');
});

test('remote repositories take neither key', () => {
  try {
    validateConfig({ repositories: { hub: { type: 'remote', url: 'https://registry-1.docker.io', maxUniqueTags: 3 } } }, { baseDir: '/' });
    assert.unreachable('accepted');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, 'maxUniqueTags');
  }
});

test.run();
