import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/validate.js';

// Virtual repository configuration: members must exist, may not loop, and pushes go to a local member.

function problem(repositories: Record<string, unknown>): string {
  try {
    validateConfig({ repositories }, { baseDir: '/' });
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

test('a virtual repository over local and remote members is accepted with its settings', () => {
  const config = validateConfig({
    repositories: {
      'docker-local': { type: 'local' },
      'docker-hub': { type: 'remote', url: 'https://registry-1.docker.io' },
      docker: { type: 'virtual', repositories: ['docker-local', 'docker-hub'], defaultDeploymentRepo: 'docker-local' },
    },
  }, { baseDir: '/' });
  assert.equal(config.repositories.docker, {
    type: 'virtual', repositories: ['docker-local', 'docker-hub'], defaultDeploymentRepo: 'docker-local', resolveDockerTagsByTimestamp: false,
  });
});

test('a loop of virtual repositories is an error naming the loop', () => {
  const message = problem({
    a: { type: 'virtual', repositories: ['b'] },
    b: { type: 'virtual', repositories: ['c'] },
    c: { type: 'virtual', repositories: ['a'] },
  });
  assert.is(message, 'repositories.a.repositories: virtual repositories form a loop: a → b → c → a');
  assert.match(problem({ a: { type: 'virtual', repositories: ['a'] } }), /loop: a → a/);
});

test('an unknown member, an empty list and a duplicate are errors naming the key', () => {
  assert.is(problem({ a: { type: 'local' }, v: { type: 'virtual', repositories: ['a', 'nope'] } }), 'repositories.v.repositories[1]: no repository "nope" (configured: a, v)');
  assert.match(problem({ v: { type: 'virtual', repositories: [] } }), /^repositories\.v\.repositories: a virtual repository needs at least one member/);
  assert.match(problem({ a: { type: 'local' }, v: { type: 'virtual', repositories: ['a', 'a'] } }), /^repositories\.v\.repositories\[1\]: a is listed twice/);
});

test('the default deployment repository must be a local member, nested members included', () => {
  const repositories = {
    a: { type: 'local' },
    r: { type: 'remote', url: 'http://127.0.0.1:1' },
    inner: { type: 'virtual', repositories: ['a'] },
  };
  assert.is(problem({ ...repositories, v: { type: 'virtual', repositories: ['r'], defaultDeploymentRepo: 'r' } }), 'repositories.v.defaultDeploymentRepo: expected a local member of v (it has none), got "r"');
  assert.match(problem({ ...repositories, b: { type: 'local' }, v: { type: 'virtual', repositories: ['a'], defaultDeploymentRepo: 'b' } }), /expected a local member of v \(a\), got "b"/);
  const config = validateConfig({ repositories: { ...repositories, v: { type: 'virtual', repositories: ['inner', 'r'], defaultDeploymentRepo: 'a' } } }, { baseDir: '/' });
  assert.is((config.repositories.v as { defaultDeploymentRepo: string }).defaultDeploymentRepo, 'a');
});

test.run();
