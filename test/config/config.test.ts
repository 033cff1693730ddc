import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { configFile, problem } from '../helpers/config.js';
import { runCli } from '../helpers/server.js';


test('the shipped default config is valid: docker-local, docker-hub and the virtual docker on 127.0.0.1:5000, data in ./data', () => {
  const config = loadConfig('config/wharf.yaml', {}, {});
  assert.equal(config.listeners, [{ address: '127.0.0.1', port: 5000, tls: 'none', certificates: [], repository: null, mirrors: null, redirectToHttps: false }]);
  assert.equal(Object.keys(config.repositories), ['docker-local', 'docker-hub', 'docker']);
  assert.equal(config.repositories.docker, { type: 'virtual', repositories: ['docker-local', 'docker-hub'], defaultDeploymentRepo: 'docker-local', resolveDockerTagsByTimestamp: false });
  assert.equal(config.repositories['docker-local'], { type: 'local', blockSchema1: true, gc: { untagged: 'delete' }, maxUniqueTags: 0, platformTags: false });
  assert.equal(config.storage, { blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } });
  assert.equal(config.gc, { interval: 3_600_000, grace: 3_600_000, uploadsExpireAfter: 86_400_000 });
  assert.is(config.dataDir, join(process.cwd(), 'data'));
  assert.ok(Object.isFrozen(config.listeners[0]));
});

test('--listen and --data override the first listener and the data directory', async () => {
  const file = await configFile('listeners:\n  - { address: 0.0.0.0, port: 5000 }\n  - { port: 5001 }\nrepositories:\n  a: { type: local }\n');
  const config = loadConfig(file, { listen: '127.0.0.2:6000', data: '/tmp/elsewhere' }, {});
  assert.equal(config.listeners, [{ address: '127.0.0.2', port: 6000, tls: 'none', certificates: [], repository: null, mirrors: null, redirectToHttps: false }, { address: '127.0.0.1', port: 5001, tls: 'none', certificates: [], repository: null, mirrors: null, redirectToHttps: false }]);
  assert.is(config.dataDir, '/tmp/elsewhere');
});

test('${ENV} is interpolated; an unset variable names its key', async () => {
  const text = 'dataDir: ${WHARF_TEST_DIR}/data\nrepositories:\n  a: { type: local }\n';
  assert.is(loadConfig(await configFile(text), {}, { WHARF_TEST_DIR: '/srv' }).dataDir, '/srv/data');
  assert.is(await problem(text), 'dataDir: environment variable WHARF_TEST_DIR is not set');
  assert.is(loadConfig(await configFile('dataDir: /x/$${HOME}\nrepositories:\n  a: { type: local }\n'), {}, {}).dataDir, '/x/${HOME}');
});

test('each invalid config is one message naming the key path', async () => {
  assert.is(await problem('repositories:\n  a: { type: local, colour: red }\n'), 'repositories.a.colour: unknown key (allowed here: type, blockSchema1, gc, maxUniqueTags, platformTags)');
  assert.is(await problem('repositories:\n  docker_local: { type: local }\n'), 'repositories.docker_local: a repository key is lowercase letters, digits and dashes (no underscores), like docker-local');
  assert.is(await problem('repositories:\n  Docker: { type: local }\n'), 'repositories.Docker: a repository key is lowercase letters, digits and dashes (no underscores), like docker-local');
  assert.is(await problem('repositories:\n  a: { type: local, blockSchema1: "yes" }\n'), 'repositories.a.blockSchema1: expected true or false, got "yes"');
  assert.is(await problem('repositories:\n  a: { type: cloud }\n'), 'repositories.a.type: expected local, remote or virtual, got "cloud"');
  assert.is(await problem('listeners:\n  - { port: 5000 }\n  - { port: 5000 }\nrepositories:\n  a: { type: local }\n'), 'listeners[1].port: port 5000 is already used by listeners[0]');
  assert.is(await problem('listeners:\n  - { port: 70000 }\nrepositories:\n  a: { type: local }\n'), 'listeners[0].port: expected a port number 0-65535, got number 70000');
  assert.is(await problem('dataDir: 5\nrepositories:\n  a: { type: local }\n'), 'dataDir: expected a non-empty string, got number 5');
  assert.is(await problem('listen: 5000\nrepositories:\n  a: { type: local }\n'), 'listen: unknown key (allowed here: dataDir, certsDir, baseDomain, trustedProxies, listeners, repositories, log, auth, permissions, metrics, storage, gc, uploads, workers, proxy, downloads)');
  assert.is(await problem('dataDir: ./x\n'), 'repositories: expected a mapping, got nothing');
  assert.is(await problem('trustedProxies: [10.0.0.0/40]\nrepositories:\n  a: { type: local }\n'), 'trustedProxies[0]: expected an IP address or CIDR block like 10.0.0.0/8, got "10.0.0.0/40"');
  assert.match(await problem('repositories: [\n'), 'is not valid YAML');
});

test('remote repositories: defaults, durations and sizes; bad values name their key', async () => {
  const file = await configFile('repositories:\n  hub:\n    type: remote\n    url: https://registry-1.docker.io/\n    metadataTtl: 5m\n    cache: { maxSize: 50GiB }\n');
  const hub = loadConfig(file, {}, {}).repositories.hub!;
  assert.equal(hub, {
    type: 'remote', url: 'https://registry-1.docker.io', username: null, password: null, metadataTtl: 300_000, serveStale: true,
    offlineAfter: 3, retryAfter: 30_000, timeouts: { connect: 10_000, response: 60_000 }, cache: { maxSize: 50 * 1024 ** 3 },
    foreignLayers: { cache: false, allow: ['**'] },
  });
  const remote = (extra: string) => `repositories:\n  hub:\n    type: remote\n    url: https://r.example\n${extra}`;
  assert.is(await problem('repositories:\n  hub: { type: remote, url: "ftp://x" }\n'), 'repositories.hub.url: expected an http or https URL, got "ftp://x"');
  assert.is(await problem('repositories:\n  hub: { type: remote }\n'), 'repositories.hub.url: expected a non-empty string, got nothing');
  assert.is(await problem(remote('    username: bot\n')), 'repositories.hub.password: username and password go together');
  assert.is(await problem(remote('    metadataTtl: soon\n')), 'repositories.hub.metadataTtl: expected a duration like 30s, 10m or 1h, got "soon"');
  assert.is(await problem(remote('    cache: { maxSize: lots }\n')), 'repositories.hub.cache.maxSize: expected a size like 512MiB or 50GiB, got "lots"');
  assert.is(await problem(remote('    foreignLayers: { allow: [3] }\n')), 'repositories.hub.foreignLayers.allow[0]: expected a non-empty string, got number 3');
  assert.is(await problem(remote('    blockSchema1: true\n')), 'repositories.hub.blockSchema1: unknown key (allowed here: type, url, username, password, metadataTtl, serveStale, offlineAfter, retryAfter, timeouts, cache, foreignLayers)');
});

test('acme: domains default to baseDomain and each <repoKey>.<baseDomain>; bad values name their key', async () => {
  const repositories = 'repositories:\n  docker-local: { type: local }\n  hub: { type: remote, url: "https://r.example" }\n';
  const withAcme = (settings: string, plain = '  - { port: 80 }\n') => `listeners:\n${plain}  - { port: 443, tls: { mode: acme, ${settings} } }\n${repositories}`;
  const config = loadConfig(await configFile(`baseDomain: reg.example.com\n${withAcme('directory: "https://ca.example/dir"')}`), {}, {});
  assert.equal(config.acme, {
    directory: 'https://ca.example/dir', email: null, challenge: 'http-01', domains: ['reg.example.com', 'docker-local.reg.example.com', 'hub.reg.example.com'],
    renewBefore: 30 * 86_400_000, retryAfter: 60_000, externalAccountBinding: null, caFile: null,
  });
  const at = 'listeners[1].tls';
  assert.is(await problem(withAcme('email: ops@reg.example')), `${at}.domains: list the DNS names to certify (or set baseDomain: it and every <repoKey>.<baseDomain> are then used)`);
  assert.is(await problem(withAcme('domains: [a.example]')), `${at}.directory: required: the ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory`);
  const directory = 'directory: "https://ca.example/dir"';
  assert.is(await problem(withAcme(`${directory}, domains: ["*.reg.example.com"]`)), `${at}.domains[0]: wildcard names need the DNS-01 challenge, which Wharf does not answer: list each name`);
  assert.is(await problem(withAcme(`${directory}, domains: [10.0.0.1]`)), `${at}.domains[0]: ACME certificates here are for DNS names, not IP addresses`);
  assert.is(await problem(withAcme(`${directory}, domains: [a.example], renewBefore: soon`)), `${at}.renewBefore: expected a duration like 30s, 10m or 1h, got "soon"`);
  assert.is(await problem(withAcme(`${directory}, domains: [a.example], challenge: dns-01`)), `${at}.challenge: expected http-01 or tls-alpn-01, got "dns-01"`);
  assert.is(loadConfig(await configFile(withAcme(`${directory}, domains: [a.example]`, '')), {}, {}).acme!.challenge, 'tls-alpn-01', 'the default without a plain listener');
  assert.is(
    await problem(withAcme(`${directory}, domains: [a.example], challenge: http-01`, '')),
    'listeners[0].tls.challenge: http-01 is answered on a plain listener: add one on port 80 (redirectToHttps: true sends the rest to HTTPS), or use tls-alpn-01',
  );
  assert.is(await problem(withAcme(`${directory}, domains: [a.example], externalAccountBinding: { hmacKey: abc }`)), `${at}.externalAccountBinding.kid: expected a non-empty string, got nothing`);
  assert.is(
    await problem(withAcme(`${directory}, domains: [a.example], externalAccountBinding: { kid: k1, hmacKey: "not base64!" }`)),
    `${at}.externalAccountBinding.hmacKey: expected the base64url HMAC key the CA gave (the value is not shown here)`,
  );
  assert.is(await problem(`listeners:\n  - { port: 443, tls: { mode: self-signed, ${directory} } }\n${repositories}`), 'listeners[0].tls.directory: only used with mode: acme');
  assert.is(
    await problem(withAcme(`${directory}, domains: [a.example]`, `  - { port: 80 }\n  - { port: 5001, tls: { mode: acme, ${directory}, domains: [b.example] } }\n`)),
    'listeners[2].tls: acme listeners share one certificate: give this one the same settings as listeners[1].tls',
  );
});

test('wharf serve with a bad config exits 2 with one line naming the key', async () => {
  const file = await configFile('repositories:\n  docker_local: { type: local }\n');
  const result = await runCli(['serve', '--config', file]);
  assert.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /^wharf: config error: repositories\.docker_local: /);
});

test('wharf --help describes serve and its options', async () => {
  const result = await runCli(['--help']);
  assert.is(result.code, 0);
  for (const word of ['serve', '--config', '--listen', '--data']) assert.match(result.stdout, word);
  assert.is((await runCli(['frobnicate'])).code, 2);
});

test.run();
