import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';

// auth: and permissions: in the config: defaults, and one message naming the key for each mistake.

const repositories = { 'docker-local': { type: 'local' } };
const validate = (extra: Record<string, unknown>) => validateConfig({ repositories, ...extra }, { baseDir: '/' });

function problem(extra: Record<string, unknown>): string {
  try {
    validate(extra);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

test('auth is on by default, with 5-minute tokens; the shipped config keeps it on', () => {
  const config = validate({});
  assert.equal(config.auth, {
    enabled: true, unsafeAllowNetwork: false, service: 'wharf', tokenLifetime: 300_000, refreshTokenLifetime: 7 * 86_400_000,
    throttle: { perUser: 10, perAddress: 30, window: 300_000 },
  });
  assert.equal(config.permissions, []);
  assert.is(validate({ baseDomain: 'registry.example.com' }).auth.service, 'registry.example.com');
  assert.ok(loadConfig('config/wharf.yaml', {}, {}).auth.enabled);
});

test('auth: { enabled: false } is for loopback; beyond it only with unsafeAllowNetwork', () => {
  assert.not.ok(validate({ auth: { enabled: false } }).auth.enabled);
  const exposed = { listeners: [{ address: '0.0.0.0', port: 5000 }], auth: { enabled: false } };
  assert.match(problem(exposed), /^auth\.enabled: false gives everyone full access, and a listener is on 0\.0\.0\.0/);
  assert.not.ok(validate({ ...exposed, auth: { enabled: false, unsafeAllowNetwork: true } }).auth.enabled);
  assert.ok(validate({ listeners: [{ address: '::1', port: 5000 }, { address: '127.0.0.2', port: 5001 }], auth: { enabled: false } }));
});

test('permission targets as the issue shows them; mistakes name their key', () => {
  const config = validate({
    permissions: [{ name: 'team-deploy', repositories: ['docker-local'], include: ['team/**'], exclude: [], users: { ci: ['read', 'deploy'] }, groups: { developers: ['read', 'deploy', 'delete'] }, anonymous: [] }],
  });
  assert.equal(config.permissions[0]!.users, { ci: ['read', 'deploy'] });
  assert.ok(Object.isFrozen(config.permissions[0]!.include));
  assert.is(problem({ permissions: [{ name: 'a', repositories: ['nope'] }] }), 'permissions[0].repositories[0]: no repository "nope" (configured: docker-local; "*" means all)');
  assert.is(problem({ permissions: [{ name: 'a', repositories: ['*'], users: { ci: ['write'] } }] }), 'permissions[0].users.ci[0]: expected one of read, annotate, deploy, delete, manage, got "write"');
  assert.is(problem({ permissions: [{ name: 'a', repositories: ['*'] }, { name: 'a', repositories: ['*'] }] }), 'permissions[1].name: another permission target is already named "a"');
  assert.is(problem({ permissions: [{ repositories: ['*'] }] }), 'permissions[0].name: expected a non-empty string, got nothing');
  assert.is(problem({ permissions: [{ name: 'a', repositories: ['*'], grant: 1 }] }), 'permissions[0].grant: unknown key (allowed here: name, repositories, include, exclude, users, groups, anonymous)');
  assert.is(problem({ auth: { tokenLifetime: '10x' } }), 'auth.tokenLifetime: expected a duration like 30s, 10m or 1h, got "10x"');
  assert.is(problem({ auth: { throttle: { perUser: 0 } } }), 'auth.throttle.perUser: expected a whole number of at least 1, got number 0');
});

test('token and auth are reserved repository keys', () => {
  assert.is(problem({ repositories: { token: { type: 'local' } } }), 'repositories.token: "token" is reserved (/v2/token and /v2/auth belong to the token service); choose another key');
  assert.match(problem({ repositories: { auth: { type: 'local' } } }), 'repositories.auth: "auth" is reserved');
});

test.run();
