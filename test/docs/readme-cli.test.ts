import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { blob } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { pushBlob } from '../helpers/registry.js';
import { cliPath, runCli, spawnWharf, startWharf, tempDir } from '../helpers/server.js';
import { exitOf } from '../helpers/children.js';

// README, "The `wharf` command": `serve` reads config/wharf.yaml from the working directory, else
// the one shipped with the package; `--listen 127.0.0.1:0` picks a free port and the chosen URL
// is printed on standard output with the version, the config file, the data directory and what
// each listener serves; `--data DIR` replaces dataDir. `proxy-config` writes wharf.conf into nginx/
// or apache/ unless --out, one site per subdomain by default when there is a baseDomain. `gc`
// writes a progress line on a terminal, always a summary.

const shipped = fileURLToPath(new URL('../../../config/wharf.yaml', import.meta.url));

/** `wharf serve --listen 127.0.0.1:0 --data <data>` in `cwd`, without --config: its standard output until it listens. */
async function serveIn(cwd: string, data: string): Promise<{ stdout: string; url: string }> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--listen', '127.0.0.1:0', '--data', data], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = logCollector();
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => stdout.chunk(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = exitOf(child);
  try {
    const line = await Promise.race([
      stdout.waitFor(/listening on http:\/\//, 30_000),
      exited.then((code) => { throw new Error(`wharf exited with ${String(code)}: ${stderr}`); }),
    ]);
    const url = /listening on (http:\/\/\S+)/.exec(line)![1]!;
    assert.is((await fetch(`${url}/v2/`)).headers.get('docker-distribution-api-version'), 'registry/2.0', 'the printed URL is where it serves');
    return { stdout: stdout.lines.join('\n'), url };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

test('serve without --config reads config/wharf.yaml in the working directory', async () => {
  const cwd = await tempDir();
  await mkdir(join(cwd, 'config'));
  await writeFile(join(cwd, 'config', 'wharf.yaml'), 'repositories:\n  docs-here: { type: local }\nauth: { enabled: false }\nlog: { access: false }\n');
  const data = join(cwd, 'elsewhere');
  const { stdout, url } = await serveIn(cwd, data);
  assert.match(stdout, `: config ${join(cwd, 'config', 'wharf.yaml')}, data in ${data}`);
  assert.match(stdout, `listening on ${url} serving docs-here by path`);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.is.not(new URL(url).port, '0');
});

test('serve without --config and without config/wharf.yaml here runs the shipped one: docker-local, docker-hub and docker', async () => {
  const cwd = await tempDir();
  const data = join(cwd, 'data-dir');
  const { stdout, url } = await serveIn(cwd, data);
  assert.match(stdout, `: config ${shipped}, data in ${data}`);
  assert.match(stdout, `listening on ${url} serving docker-local, docker-hub, docker by path`);
  assert.match(stdout, 'the first user is admin, password', 'the shipped config has access control on');
});

test('proxy-config without --out writes nginx/wharf.conf or apache/wharf.conf here; subdomain sites by default with baseDomain', async () => {
  const cwd = await tempDir();
  const config = join(cwd, 'wharf.yaml');
  await writeFile(config, 'baseDomain: reg-docs.test\nrepositories:\n  docker-local: { type: local }\n');
  const run = (server: string) => promisify(execFile)(process.execPath, [cliPath, 'proxy-config', server, '--config', config], { cwd });
  for (const [server, site] of [['nginx', 'server_name docker-local.reg-docs.test;'], ['apache', 'ServerName docker-local.reg-docs.test']] as const) {
    const { stdout } = await run(server);
    const file = join(cwd, server, 'wharf.conf');
    assert.match(stdout, `wharf: wrote ${file} (${server}, subdomain method)`);
    assert.match(await readFile(file, 'utf8'), site);
  }
});

test('proxy-config for a configuration without a plain listener warns that the site forwards to 127.0.0.1:5000, where nothing listens', async () => {
  const cwd = await tempDir();
  const config = join(cwd, 'wharf.yaml');
  const repositories = 'repositories:\n  docker-local: { type: local }\n';
  await writeFile(config, `certsDir: ${join(cwd, 'certs')}\nlisteners:\n  - { address: 127.0.0.1, port: 18443, tls: { mode: self-signed } }\n${repositories}`);
  const run = () => runCli(['proxy-config', 'nginx', '--out', join(cwd, 'out'), '--config', config]);
  const warned = await run();
  assert.is(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, 'wharf: warning: the configuration has no plain listener (tls none, no repository) for the proxy to forward to; the site forwards to http://127.0.0.1:5000: add { address: 127.0.0.1, port: 5000 } to listeners');
  assert.match(await readFile(join(cwd, 'out', 'wharf.conf'), 'utf8'), 'server 127.0.0.1:5000;');
  await writeFile(config, `certsDir: ${join(cwd, 'certs')}\nlisteners:\n  - { address: 127.0.0.1, port: 18500 }\n${repositories}`);
  const quiet = await run();
  assert.is(quiet.code, 0, quiet.stderr);
  assert.not.match(quiet.stderr, 'warning');
  assert.match(await readFile(join(cwd, 'out', 'wharf.conf'), 'utf8'), 'server 127.0.0.1:18500;');
  // By port: a binding's site keeps the binding's port, which Wharf's own listener holds.
  await writeFile(config, `certsDir: ${join(cwd, 'certs')}\nlisteners:\n  - { address: 127.0.0.1, port: 18500 }\n  - { address: 127.0.0.1, port: 18501, repository: docker-local }\n${repositories}`);
  const byPort = await runCli(['proxy-config', 'nginx', '--method', 'port', '--out', join(cwd, 'out'), '--config', config]);
  assert.is(byPort.code, 0, byPort.stderr);
  assert.match(byPort.stderr, "wharf: warning: the sites listen on ports Wharf's own listeners have (docker-local on 18501); on one host, move those listeners off them");
  assert.match(await readFile(join(cwd, 'out', 'wharf.conf'), 'utf8'), 'listen 18501 ssl');
});

test('SIGINT stops serve as SIGTERM does: it says so and exits 0', async () => {
  const wharf = await spawnWharf(await tempDir());
  const exited = exitOf(wharf.child);
  wharf.child.kill('SIGINT');
  await wharf.log.waitFor('SIGINT: shutting down');
  assert.is(await exited, 0);
});

test('gc: a progress line on a terminal, rewritten in place; without one only the summary', async () => {
  const wharf = await startWharf();
  await pushBlob(wharf.url, 'docker-local/team/loose', blob(randomBytes(1024)));
  await wharf.stop();
  const configFile = `${wharf.dataDir}.yaml`;
  // JSON is YAML: the storage the server ran with, and no grace, so the blob nothing uses goes now.
  await writeFile(configFile, JSON.stringify({ dataDir: wharf.dataDir, storage: wharf.storage, repositories: { 'docker-local': { type: 'local' } }, gc: { grace: '0s' } }));
  try {
    // script(1) runs it on a pseudo-terminal and copies what it writes there.
    const command = [process.execPath, cliPath, 'gc', '--config', configFile].map((word) => `'${word}'`).join(' ');
    const { stdout: terminal } = await promisify(execFile)('script', ['-qec', command, '/dev/null']);
    assert.match(terminal, '\r\x1b[Kuploads: 0 manifests, 0 blobs, 0 B', 'a progress line, cleared and rewritten in place');
    assert.match(terminal, '\r\x1b[Kblobs: 0 manifests, 1 blobs, 1.0 KiB');
    assert.ok(terminal.endsWith('\r\x1b[Kwharf gc: removed 0 manifests and 1 blobs (1.0 KiB freed), expired 0 upload sessions\r\n'), `the summary replaces the progress line: ${JSON.stringify(terminal)}`);
    const piped = await runCli(['gc', '--config', configFile]);
    assert.is(piped.code, 0, piped.stderr);
    assert.is(piped.stdout, 'wharf gc: removed 0 manifests and 0 blobs (0 B freed), expired 0 upload sessions\n', 'not on a terminal: the summary alone');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
