import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { configFile, problem } from '../helpers/config.js';
import { runCli, tempDir } from '../helpers/server.js';

// Configuration mistakes an operator makes on day one, each answered by one message naming the key.


const local = 'repositories:\n  docker-local: { type: local }\n';

test('an invalid listener address stops start-up with exit 2 naming the key, not a resolver error', async () => {
  assert.is(await problem(`listeners:\n  - { address: 999.1.1.1, port: 5000 }\n${local}`),
    'listeners[0].address: expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "999.1.1.1": not a valid IP address');
  assert.is(await problem(`listeners:\n  - { address: "host name", port: 5000 }\n${local}`),
    'listeners[0].address: expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "host name"');
  assert.is(await problem(`listeners:\n  - { address: "::zz", port: 5000 }\n${local}`),
    'listeners[0].address: expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "::zz": not a valid IP address');
  const file = await configFile(`listeners:\n  - { address: 999.1.1.1, port: 0 }\n${local}`);
  const result = await runCli(['serve', '--config', file, '--data', join(await tempDir(), 'data')]);
  assert.is(result.code, 2);
  assert.is(result.stderr.trim(), 'wharf: config error: listeners[0].address: expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "999.1.1.1": not a valid IP address');
  // What is valid still is.
  const config = loadConfig(await configFile(`listeners:\n  - { address: "::1", port: 1 }\n  - { address: "[::]", port: 2 }\n  - { address: localhost, port: 3 }\n${local}`), {}, {});
  assert.equal(config.listeners.map((l) => l.address), ['::1', '::', 'localhost']);
});

test('redirectToHttps needs a TLS listener that serves by path: port bindings and mirrors are not one', async () => {
  const hub = '  hub: { type: remote, url: "https://hub.example" }\n';
  assert.is(await problem(`listeners:\n  - { port: 80, redirectToHttps: true }\n  - { port: 5001, tls: { mode: self-signed }, repository: docker-local }\n  - { port: 5002, tls: { mode: self-signed }, mirrors: { docker.io: hub } }\n${local}${hub}`),
    'listeners[0].redirectToHttps: needs a plain listener here and a TLS listener that serves by path (no repository, no mirrors) to redirect to');
});

test('keys and names that are too long get a message about their length', async () => {
  const long = 'a'.repeat(64);
  assert.is(await problem(`repositories:\n  ${long}: { type: local }\n`),
    `repositories.${long}: a repository key is at most 63 characters (it is a DNS label in <key>.<baseDomain>); this one has 64`);
  assert.ok(loadConfig(await configFile(`repositories:\n  ${'a'.repeat(63)}: { type: local }\n`), {}, {}).repositories['a'.repeat(63)]);
  assert.match(await problem(`baseDomain: ${'b'.repeat(70)}.example.com\n${local}`), 'baseDomain: each dot-separated part of a DNS name is at most 63 characters');
  assert.is(await problem(`baseDomain: ${'abcdefgh.'.repeat(30)}com\n${local}`), 'baseDomain: a DNS name is at most 253 characters; this one has 273');
});

test('a missing repository type says it is required, not "got null"', async () => {
  assert.is(await problem('repositories:\n  docker-local: { blockSchema1: true }\n'), 'repositories.docker-local.type: required: local, remote or virtual');
  assert.is(await problem('repositories:\n  docker-local: {}\n'), 'repositories.docker-local.type: required: local, remote or virtual');
  assert.is(await problem('repositories:\n  docker-local: { type: 7 }\n'), 'repositories.docker-local.type: expected local, remote or virtual, got number 7');
});

test('${VAR} works as an unquoted value in a flow mapping, as the shipped config writes listeners', async () => {
  const text = 'listeners:\n  - { address: ${ADDR}, port: ${PORT}, redirectToHttps: ${REDIRECT} }\n  - { port: ${TLS_PORT}, tls: { mode: self-signed } }\n'
    + 'repositories: { docker-local: { type: local }, hub: { type: remote, url: "${HUB}", offlineAfter: ${N} } }\n';
  const config = loadConfig(await configFile(text), {}, { ADDR: '127.0.0.1', PORT: '5000', REDIRECT: 'true', TLS_PORT: '5443', HUB: 'https://hub.example', N: '4' });
  assert.equal(config.listeners.map((l) => [l.address, l.port, l.redirectToHttps]), [['127.0.0.1', 5000, true], ['127.0.0.1', 5443, false]]);
  assert.is(config.repositories.hub!.type === 'remote' && config.repositories.hub!.offlineAfter, 4);
  // An unset variable still names its key, and quoting keeps working as before.
  assert.is(await problem('listeners:\n  - { port: ${PORT} }\n' + local), 'listeners[0].port: environment variable PORT is not set');
  assert.is(loadConfig(await configFile('listeners:\n  - { port: "${PORT}" }\n' + local), {}, { PORT: '6000' }).listeners[0]!.port, 6000);
  // A file broken for another reason says so, with the hint.
  assert.match(await problem('listeners:\n  - { port: ${PORT}, tls: { mode: [ }\n' + local, { PORT: '1' }), /is not valid YAML: .*may need quotes: "\$\{NAME\}"/);
});

test('a dataDir or certsDir that cannot be a writable directory (/proc, a file) stops start-up with exit 2 naming the key', async () => {
  const file = join(await tempDir(), 'a-file');
  await writeFile(file, '');
  const cases = [
    { dir: 'dataDir: /proc/wharf-data', message: 'dataDir: /proc/wharf-data must be a directory Wharf can write in: creating it failed (ENOENT)' },
    { dir: 'dataDir: /proc', message: 'dataDir: /proc must be a directory Wharf can write in: writing a file in it failed (ENOENT)' },
    { dir: `dataDir: ${file}`, message: `dataDir: ${file} must be a directory Wharf can write in: it is not a directory` },
    { dir: `dataDir: ${join(file, 'data')}`, message: `dataDir: ${join(file, 'data')} must be a directory Wharf can write in: creating it failed (ENOTDIR)` },
    { dir: `dataDir: ${await tempDir()}\ncertsDir: /proc/wharf-certs`, message: 'certsDir: /proc/wharf-certs must be a directory Wharf can write in: creating it failed (ENOENT)' },
  ];
  for (const { dir, message } of cases) {
    const config = await configFile(`${dir}\nlisteners:\n  - { address: 127.0.0.1, port: 0, tls: { mode: self-signed } }\n${local}`);
    // Bounded: Node's recursive mkdir spun forever under /proc, and start-up with it.
    const result = await runCli(['serve', '--config', config], process.env, undefined, 30_000);
    assert.is(result.stderr.trim(), `wharf: config error: ${message}`);
    assert.is(result.code, 2, dir);
  }
});

test.run();
