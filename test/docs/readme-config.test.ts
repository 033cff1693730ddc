import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import { configFile } from '../helpers/config.js';

// README's configuration table against the validator: every key it lists is accepted, every key
// the validator accepts is listed, and each stated default is the one a config without the key gets.

const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

/** The rows of the table under "## Configuration": their key paths (`.b` after `a.x` is `a.b`) and default cell. */
function configRows(): { keys: string[]; cell: string }[] {
  const section = readme.split('\n## Configuration\n')[1]!.split('\n## ')[0]!;
  return section.split('\n').filter((line) => line.startsWith('| `')).map((line) => {
    const [keyCell, , cell] = line.slice(2).split(' | ');
    let parent = '';
    const keys = [...keyCell!.matchAll(/`([^`]+)`/g)].map(([, key]) => {
      const path = key!.startsWith('.') ? parent + key : key!;
      parent = path.slice(0, path.lastIndexOf('.'));
      return path;
    });
    return { keys, cell: cell! };
  });
}

/** Each listed key → its row's default cell. */
function configTable(): Map<string, string> {
  return new Map(configRows().flatMap(({ keys, cell }) => keys.map((key) => [key, cell] as const)));
}

const local = { repositories: { r: { type: 'local' } } };

/** The keys the validator allows in the mapping at `at` in `raw` (read from its unknown-key message). */
function allowedKeys(raw: Record<string, unknown>, place: (tree: Record<string, unknown>) => Record<string, unknown>): string[] {
  const tree = structuredClone(raw);
  place(tree).zzUnknown = 1;
  try {
    validateConfig(tree, { baseDir: '/' });
  } catch (error) {
    assert.instance(error, ConfigError);
    const match = /\.?zzUnknown: unknown key \(allowed here: (.*)\)$/.exec((error as Error).message);
    assert.ok(match, (error as Error).message);
    return match![1]!.split(', ');
  }
  throw new Error('an unknown key was accepted');
}

/** Every key path the validator accepts, as the README writes them (`listeners[].x`, `repositories.<key>.x`). */
function validatorKeys(): Set<string> {
  const repo = (settings: Record<string, unknown>) => ({ repositories: { r: settings } });
  type Level = [string, Record<string, unknown>, (tree: Record<string, unknown>) => Record<string, unknown>];
  const levels: Level[] = [
    ['', local, (t) => t],
    ['listeners[]', { ...local, listeners: [{ port: 1 }] }, (t) => (t.listeners as Record<string, unknown>[])[0]!],
    ['listeners[].tls', { ...local, listeners: [{ port: 1, tls: { mode: 'none' } }] }, (t) => (t.listeners as Record<string, Record<string, unknown>>[])[0]!.tls!],
    ['repositories.<key>', repo({ type: 'local' }), (t) => (t.repositories as Record<string, Record<string, unknown>>).r!],
    ['repositories.<key>.gc', repo({ type: 'local', gc: {} }), (t) => (t.repositories as Record<string, Record<string, Record<string, unknown>>>).r!.gc!],
    ['repositories.<key>', repo({ type: 'remote', url: 'https://x.example' }), (t) => (t.repositories as Record<string, Record<string, unknown>>).r!],
    ['repositories.<key>', { repositories: { l: { type: 'local' }, r: { type: 'virtual', repositories: ['l'] } } }, (t) => (t.repositories as Record<string, Record<string, unknown>>).r!],
    ...(['timeouts', 'cache', 'foreignLayers'] as const).map((key) => [`repositories.<key>.${key}`, repo({ type: 'remote', url: 'https://x.example', [key]: {} }),
      (t: Record<string, unknown>) => (t.repositories as Record<string, Record<string, Record<string, unknown>>>).r![key]!] as Level),
    ['log', { ...local, log: {} }, (t) => t.log as Record<string, unknown>],
    ['auth', { ...local, auth: {} }, (t) => t.auth as Record<string, unknown>],
    ['auth.throttle', { ...local, auth: { throttle: {} } }, (t) => (t.auth as Record<string, Record<string, unknown>>).throttle!],
    ['permissions[]', { ...local, permissions: [{ name: 'p', repositories: ['r'] }] }, (t) => (t.permissions as Record<string, unknown>[])[0]!],
    ['metrics', { ...local, metrics: { port: 1 } }, (t) => t.metrics as Record<string, unknown>],
    ['storage', { ...local, storage: {} }, (t) => t.storage as Record<string, unknown>],
    ['storage.blobs', { ...local, storage: { blobs: { driver: 's3', bucket: 'bucket' } } }, (t) => (t.storage as Record<string, Record<string, unknown>>).blobs!],
    ['storage.blobs.timeouts', { ...local, storage: { blobs: { driver: 's3', bucket: 'bucket', timeouts: {} } } }, (t) => (t.storage as Record<string, Record<string, Record<string, unknown>>>).blobs!.timeouts!],
    ['storage.metadata', { ...local, storage: { metadata: { driver: 'postgres', url: 'postgres://h/d' } } }, (t) => (t.storage as Record<string, Record<string, unknown>>).metadata!],
    ['storage.metadata.timeouts', { ...local, storage: { metadata: { driver: 'postgres', url: 'postgres://h/d', timeouts: {} } } }, (t) => (t.storage as Record<string, Record<string, Record<string, unknown>>>).metadata!.timeouts!],
    ['gc', { ...local, gc: {} }, (t) => t.gc as Record<string, unknown>],
    ['uploads', { ...local, uploads: {} }, (t) => t.uploads as Record<string, unknown>],
    ['proxy', { ...local, proxy: {} }, (t) => t.proxy as Record<string, unknown>],
    ['downloads', { ...local, downloads: {} }, (t) => t.downloads as Record<string, unknown>],
  ];
  const keys = new Set<string>();
  for (const [prefix, raw, place] of levels) {
    for (const key of allowedKeys(raw, place)) keys.add(prefix ? `${prefix}.${key}` : key);
  }
  return keys;
}

test('README lists exactly the configuration keys the validator accepts', () => {
  const documented = [...configTable().keys()];
  const accepted = [...validatorKeys()];
  assert.equal(documented.filter((key) => !accepted.includes(key)), [], 'listed in README, refused by the validator');
  // A mapping the README describes by its leaves (`log` by `log.access`, …) need not have a row of its own.
  const undocumented = accepted.filter((key) => !documented.some((row) => row === key || row.startsWith(`${key}.`)));
  assert.equal(undocumented, [], 'accepted by the validator, missing from README');
});

test("README's defaults are what a config without the key gets", () => {
  const rows = configTable();
  const remote = { type: 'remote', url: 'https://x.example' };
  const config = validateConfig({ repositories: { l: { type: 'local' }, h: remote, v: { type: 'virtual', repositories: ['l'] } } }, { baseDir: '/srv' });
  const withAcme = validateConfig({ baseDomain: 'reg.example', listeners: [{ port: 80 }, { port: 443, tls: { mode: 'acme', directory: 'https://ca.example/dir' } }], repositories: { l: { type: 'local' } } }, { baseDir: '/' });
  const alpnOnly = validateConfig({ listeners: [{ port: 443, tls: { mode: 'acme', directory: 'https://ca.example/dir', domains: ['a.example'] } }], repositories: { l: { type: 'local' } } }, { baseDir: '/' });
  const withMetrics = validateConfig({ metrics: { port: 9100 }, repositories: { l: { type: 'local' } } }, { baseDir: '/' });
  const s3 = validateConfig({ storage: { blobs: { driver: 's3', bucket: 'bucket', endpoint: 'http://127.0.0.1:9000' } }, repositories: { l: { type: 'local' } } }, { baseDir: '/' });
  const postgres = validateConfig({ storage: { metadata: { driver: 'postgres', url: 'postgres://h/d' } }, repositories: { l: { type: 'local' } } }, { baseDir: '/' }).storage.metadata as Extract<Config['storage']['metadata'], { driver: 'postgres' }>;
  const s3Aws = validateConfig({ storage: { blobs: { driver: 's3', bucket: 'bucket' } }, repositories: { l: { type: 'local' } } }, { baseDir: '/' });
  const target = validateConfig({ repositories: { l: { type: 'local' } }, permissions: [{ name: 'p', repositories: ['l'] }] }, { baseDir: '/' }).permissions[0]!;
  const l = config.repositories.l as Extract<Config['repositories'][string], { type: 'local' }>;
  const h = config.repositories.h as Extract<Config['repositories'][string], { type: 'remote' }>;
  const v = config.repositories.v as Extract<Config['repositories'][string], { type: 'virtual' }>;
  const blobs = (c: Config) => c.storage.blobs as Extract<Config['storage']['blobs'], { driver: 's3' }>;
  const minute = 60_000;
  // README key → [its default cell, the value the validator gives].
  const expected: Record<string, [string, unknown, unknown]> = {
    dataDir: ['`./data`', config.dataDir, '/srv/data'],
    certsDir: ['`./certs`', config.certsDir, '/srv/certs'],
    baseDomain: ['none', config.baseDomain, null],
    trustedProxies: ['none', config.trustedProxies, []],
    listeners: ['`[{address: 127.0.0.1, port: 5000}]`', config.listeners.map(({ address, port }) => ({ address, port })), [{ address: '127.0.0.1', port: 5000 }]],
    'listeners[].address': ['`127.0.0.1`', validateConfig({ listeners: [{ port: 1 }], repositories: { l: { type: 'local' } } }, { baseDir: '/' }).listeners[0]!.address, '127.0.0.1'],
    'listeners[].tls.mode': ['`none`', config.listeners[0]!.tls, 'none'],
    'listeners[].repository': ['none', config.listeners[0]!.repository, null],
    'listeners[].mirrors': ['none', config.listeners[0]!.mirrors, null],
    'listeners[].redirectToHttps': ['`false`', config.listeners[0]!.redirectToHttps, false],
    'listeners[].tls.email': ['none', withAcme.acme!.email, null],
    'listeners[].tls.challenge': ['`http-01` with a plain listener, else `tls-alpn-01`', [withAcme.acme!.challenge, alpnOnly.acme!.challenge], ['http-01', 'tls-alpn-01']],
    'listeners[].tls.domains': ['`baseDomain` and each `<key>.<baseDomain>`', withAcme.acme!.domains, ['reg.example', 'l.reg.example']],
    'listeners[].tls.renewBefore': ['`30d`', withAcme.acme!.renewBefore, 30 * 86_400_000],
    'listeners[].tls.retryAfter': ['`1m`', withAcme.acme!.retryAfter, minute],
    'listeners[].tls.externalAccountBinding': ['none', withAcme.acme!.externalAccountBinding, null],
    'listeners[].tls.caFile': ['none', withAcme.acme!.caFile, null],
    'repositories.<key>.defaultDeploymentRepo': ['none', v.defaultDeploymentRepo, null],
    'repositories.<key>.resolveDockerTagsByTimestamp': ['`false`', v.resolveDockerTagsByTimestamp, false],
    'repositories.<key>.blockSchema1': ['`true`', l.blockSchema1, true],
    'repositories.<key>.maxUniqueTags': ['`0`', l.maxUniqueTags, 0],
    'repositories.<key>.platformTags': ['`false`', l.platformTags, false],
    'repositories.<key>.gc.untagged': ['`delete`', l.gc.untagged, 'delete'],
    'repositories.<key>.username': ['anonymous', [h.username, h.password], [null, null]],
    'repositories.<key>.metadataTtl': ['`10m`', h.metadataTtl, 10 * minute],
    'repositories.<key>.serveStale': ['`true`', h.serveStale, true],
    'repositories.<key>.offlineAfter': ['`3`', h.offlineAfter, 3],
    'repositories.<key>.retryAfter': ['`30s`', h.retryAfter, 30_000],
    'repositories.<key>.timeouts.connect': ['`10s`, `60s`', [h.timeouts.connect, h.timeouts.response], [10_000, 60_000]],
    'repositories.<key>.cache.maxSize': ['no limit', h.cache.maxSize, null],
    'repositories.<key>.foreignLayers.cache': ['`false`', h.foreignLayers.cache, false],
    'repositories.<key>.foreignLayers.allow': ['`["**"]`', h.foreignLayers.allow, ['**']],
    'log.access': ['`true`', config.log.access, true],
    'log.format': ['`text`', config.log.format, 'text'],
    'metrics.address': ['none (off); address `127.0.0.1`', [config.metrics, withMetrics.metrics!.address], [null, '127.0.0.1']],
    'auth.enabled': ['`true`', config.auth.enabled, true],
    'auth.unsafeAllowNetwork': ['`false`', config.auth.unsafeAllowNetwork, false],
    'auth.service': ['`baseDomain`, else `wharf`', [withAcme.auth.service, config.auth.service], ['reg.example', 'wharf']],
    'auth.tokenLifetime': ['`5m`', config.auth.tokenLifetime, 5 * minute],
    'auth.refreshTokenLifetime': ['`7d`', config.auth.refreshTokenLifetime, 7 * 86_400_000],
    'auth.throttle.perUser': ['`10`, `30`, `5m`', [config.auth.throttle.perUser, config.auth.throttle.perAddress, config.auth.throttle.window], [10, 30, 5 * minute]],
    permissions: ['none', config.permissions, []],
    'permissions[].include': ['`["**"]`, `[]`', [target.include, target.exclude], [['**'], []]],
    'permissions[].users': ['none', [target.users, target.groups], [{}, {}]],
    'permissions[].anonymous': ['`[]`', target.anonymous, []],
    'storage.blobs.driver': ['`filesystem`', config.storage.blobs.driver, 'filesystem'],
    'storage.blobs.endpoint': ['AWS', blobs(s3Aws).endpoint, null],
    'storage.blobs.region': ['`us-east-1`', blobs(s3).region, 'us-east-1'],
    'storage.blobs.prefix': ['none', blobs(s3).prefix, ''],
    'storage.blobs.accessKeyId': ['the AWS SDK\'s own chain', [blobs(s3).accessKeyId, blobs(s3).secretAccessKey], [null, null]],
    'storage.blobs.forcePathStyle': ['`true` with an endpoint', [blobs(s3).forcePathStyle, blobs(s3Aws).forcePathStyle], [true, false]],
    'storage.blobs.redirect': ['`false`', blobs(s3).redirect, false],
    'storage.blobs.timeouts.connect': ['`10s`, `60s`', [blobs(s3).timeouts.connect, blobs(s3).timeouts.response], [10_000, 60_000]],
    'storage.metadata.driver': ['`sqlite`', config.storage.metadata.driver, 'sqlite'],
    'storage.metadata.timeouts.connect': ['`10s`, `60s`', [postgres.timeouts.connect, postgres.timeouts.response], [10_000, 60_000]],
    'gc.interval': ['`1h`', config.gc.interval, 60 * minute],
    'gc.grace': ['`1h`', config.gc.grace, 60 * minute],
    'uploads.expireAfter': ['`24h`', config.gc.uploadsExpireAfter, 24 * 60 * minute],
    'downloads.memory': ['`256MiB`', config.downloads.memory, 256 * 1024 * 1024],
    'proxy.offload': ['`false`', config.proxy.offload, false],
    workers: ['`1`', config.workers, 1],
  };
  for (const [key, [cell, actual, value]] of Object.entries(expected)) {
    assert.is(rows.get(key), cell, `README's default for ${key}`);
    assert.equal(actual, value, `the validator's default for ${key}`);
  }
  // Every row with a default (not "required") is checked above, by its first key.
  const unchecked = configRows().filter(({ keys, cell }) => !cell.startsWith('required') && !(keys[0]! in expected));
  assert.equal(unchecked.map(({ keys }) => keys[0]), []);
});

test('the keys README marks required are refused when missing, naming the key', () => {
  const refusal = (raw: unknown): string => {
    try {
      validateConfig(raw, { baseDir: '/' });
    } catch (error) {
      return (error as Error).message;
    }
    return 'accepted';
  };
  const rows = configTable();
  const required: Record<string, unknown> = {
    'listeners[].port': { listeners: [{ address: '127.0.0.1' }], ...local },
    'listeners[].tls.certificates': { listeners: [{ port: 1, tls: { mode: 'files' } }], ...local },
    'listeners[].tls.directory': { listeners: [{ port: 1, tls: { mode: 'acme', domains: ['a.example'] } }], ...local },
    repositories: {},
    'repositories.<key>.type': { repositories: { r: {} } },
    'repositories.<key>.repositories': { repositories: { r: { type: 'virtual' } } },
    'repositories.<key>.url': { repositories: { r: { type: 'remote' } } },
    'permissions[].name': { ...local, permissions: [{ repositories: ['r'] }] },
    'permissions[].repositories': { ...local, permissions: [{ name: 'p' }] },
    'storage.blobs.bucket': { ...local, storage: { blobs: { driver: 's3' } } },
    'storage.metadata.url': { ...local, storage: { metadata: { driver: 'postgres' } } },
  };
  assert.equal([...rows].filter(([, cell]) => cell.startsWith('required')).map(([key]) => key).sort(), Object.keys(required).sort());
  for (const [key, raw] of Object.entries(required)) {
    const path = key.replace('listeners[]', 'listeners[0]').replace('permissions[]', 'permissions[0]').replace('<key>', 'r');
    assert.match(refusal(raw), new RegExp(`^${path.replace(/[[\].]/g, '\\$&')}: `), key);
  }
});

test('values from ${ENV} are text: true, false and whole numbers count where a boolean or a count is expected', async () => {
  const text = [
    'listeners:', '  - { port: ${PORT}, redirectToHttps: ${YES} }', '  - { port: 0, tls: { mode: self-signed } }',
    'metrics: { port: ${PORT2} }', 'workers: ${COUNT}', 'log: { access: ${NO} }',
    'auth: { enabled: ${YES}, throttle: { perUser: ${COUNT}, perAddress: ${COUNT} } }',
    'repositories:',
    '  l: { type: local, blockSchema1: ${NO}, platformTags: ${YES}, maxUniqueTags: ${COUNT} }',
    '  h: { type: remote, url: "https://x.example", serveStale: ${NO}, offlineAfter: ${COUNT}, foreignLayers: { cache: ${YES} } }',
  ].join('\n');
  const config = loadConfig(await configFile(text), {}, { PORT: '5000', PORT2: '9100', YES: 'true', NO: 'false', COUNT: '3' });
  const l = config.repositories.l!;
  const h = config.repositories.h!;
  assert.equal([config.listeners[0]!.port, config.listeners[0]!.redirectToHttps, config.metrics!.port, config.workers, config.log.access], [5000, true, 9100, 3, false]);
  assert.equal([config.auth.enabled, config.auth.throttle.perUser, config.auth.throttle.perAddress], [true, 3, 3]);
  assert.equal(l.type === 'local' && [l.blockSchema1, l.platformTags, l.maxUniqueTags], [false, true, 3]);
  assert.equal(h.type === 'remote' && [h.serveStale, h.offlineAfter, h.foreignLayers.cache], [false, 3, true]);
});

test.run();
