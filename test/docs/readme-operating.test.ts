import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log/logger.js';
import { startServer } from '../../src/server.js';
import { readiness } from '../../src/server/readiness.js';
import { openConfiguredStore } from '../../src/storage.js';
import { makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { pushImage } from '../helpers/registry.js';
import { eventually } from '../helpers/auth.js';
import { cliPath, spawnWharf, startWharf, tempDir, testStorage } from '../helpers/server.js';
import { startCountingProxy, startDistribution } from '../helpers/upstream.js';
import { exitOf } from '../helpers/children.js';

// README, "Operating Wharf": the claims no other suite checked.

test('reload: every setting README lists as needing a restart is logged so and keeps its old value', async () => {
  const dir = await tempDir();
  const log = logCollector();
  const raw = {
    dataDir: join(dir, 'data'), certsDir: join(dir, 'certs'), listeners: [{ address: '127.0.0.1', port: 0 }],
    repositories: { 'docker-local': { type: 'local' } }, log: { access: false, format: 'text' }, auth: { enabled: false },
  };
  const config = (extra: Record<string, unknown> = {}) => validateConfig({ ...raw, ...extra }, { baseDir: dir });
  const server = await startServer(config(), { logger: createLogger({ format: 'text', write: log.write }) });
  const base = server.urls[0]!;
  try {
    await pushImage(base, 'docker-local/team/app', makeImage(), '1.0');
    const restartOnly: Record<string, unknown> = {
      dataDir: join(dir, 'elsewhere'),
      certsDir: join(dir, 'other-certs'),
      // Never reached: the running server keeps its database.
      storage: { metadata: { driver: 'postgres', url: 'postgres://wharf@127.0.0.1:1/none' } },
      metrics: { address: '127.0.0.1', port: 0 },
      log: { access: false, format: 'json' },
      auth: { enabled: false, tokenLifetime: '10m' },
      gc: { interval: '5m' },
      uploads: { expireAfter: '1h' },
      workers: 2,
      downloads: { memory: '64MiB' },
    };
    const report = await server.reload(config(restartOnly));
    // uploads.expireAfter is gc.uploadsExpireAfter in the typed config: named as the file has it.
    const expected = ['dataDir', 'certsDir', 'storage.metadata.driver', 'storage.metadata.url', 'storage.metadata.timeouts', 'metrics', 'log.format', 'auth.tokenLifetime', 'gc.interval', 'uploads.expireAfter', 'workers', 'downloads.memory'];
    assert.equal([...report.needsRestart].sort(), [...expected].sort());
    assert.equal(report.applied, []);
    const warning = await log.waitFor('which needs a restart');
    assert.match(warning, /warn reload: .* changed, which needs a restart; the old value stays in effect until then$/);
    for (const key of expected) assert.match(warning, new RegExp(`[:,] ${key.replaceAll('.', '\\.')}[, ]`), `the warning names ${key}`);
    const tags = await fetch(`${base}/v2/docker-local/team/app/tags/list`);
    assert.equal(await tags.json(), { name: 'docker-local/team/app', tags: ['1.0'] }, 'the old data directory and database still serve');
    assert.is(log.lines.filter((line) => line.startsWith('{')).length, 0, 'log.format stays text');
  } finally {
    await server.close();
  }
});

test('reload: an unchanged remote repository keeps its cache (a remembered upstream 404 is not asked again)', async () => {
  const distribution = await startDistribution();
  const proxy = await startCountingProxy(distribution.url);
  const dir = await tempDir();
  const raw = {
    dataDir: join(dir, 'data'), certsDir: join(dir, 'certs'), storage: await testStorage(), listeners: [{ address: '127.0.0.1', port: 0 }],
    repositories: { 'docker-remote': { type: 'remote', url: proxy.url } } as Record<string, unknown>, log: { access: false, format: 'text' }, auth: { enabled: false },
  };
  const server = await startServer(validateConfig(raw, { baseDir: dir }), { logger: createLogger({ format: 'text', write: () => undefined }) });
  const asked = () => proxy.counts['GET manifest'] ?? 0;
  const probe = async () => assert.is((await fetch(`${server.urls[0]}/v2/docker-remote/team/missing/manifests/nope`)).status, 404);
  try {
    await probe();
    const before = asked();
    assert.ok(before >= 1, 'the first probe asks the upstream');
    const report = await server.reload(validateConfig({ ...raw, repositories: { ...raw.repositories, 'docker-local': { type: 'local' } } }, { baseDir: dir }));
    assert.equal(report.applied, ['repositories.docker-local']);
    await probe();
    assert.is(asked(), before, 'the 404 the cache remembers is answered without the upstream');
  } finally {
    await server.close();
    await proxy.stop();
    await distribution.stop();
  }
});

test('request metrics: every route class README names is the label of its requests', async () => {
  const wharf = await startWharf({ auth: {}, users: [{ name: 'root', password: 'root-password', admin: true }], audit: () => undefined });
  const headers = { authorization: `Basic ${Buffer.from('root:root-password').toString('base64')}` };
  const zero = `sha256:${'0'.repeat(64)}`;
  const asked: Record<string, [string, string][]> = {
    base: [['GET', '/v2/']],
    manifest: [['GET', '/v2/docker-local/app/manifests/1.0']],
    blob: [['GET', `/v2/docker-local/app/blobs/${zero}`]],
    upload: [['POST', '/v2/docker-local/app/blobs/uploads/']],
    tags: [['GET', '/v2/docker-local/app/tags/list']],
    catalog: [['GET', '/v2/_catalog']],
    referrers: [['GET', `/v2/docker-local/app/referrers/${zero}`]],
    token: [['GET', '/v2/token?service=wharf'], ['GET', '/api/docker/docker-local/v2/token?service=wharf'], ['GET', '/api/docker/docker-local/v2/auth']],
    api: [['GET', '/api/setup/docker-local']],
    health: [['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/api/system/ping']],
    metrics: [['GET', '/metrics']],
    other: [['GET', '/no-such-page']],
  };
  try {
    for (const requests of Object.values(asked)) {
      for (const [method, path] of requests) await (await fetch(`${wharf.url}${path}`, { method, headers })).arrayBuffer();
    }
    const text = await (await fetch(`${wharf.url}/metrics`, { headers })).text();
    for (const [route, requests] of Object.entries(asked)) {
      const counted = [...text.matchAll(new RegExp(`^wharf_http_requests_total\\{route="${route}",[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
      assert.ok(counted >= requests.length, `route="${route}": ${counted} of ${requests.length} requests`);
    }
  } finally {
    await wharf.cleanup();
  }
});

test('wharf serve: the access log goes to standard output, operational lines to standard error', async () => {
  const dir = await tempDir();
  const configFile = join(dir, 'wharf.yaml');
  await writeFile(configFile, 'repositories:\n  docker-local: { type: local }\nlog: { access: true }\nauth: { enabled: false }\n');
  const child = spawn(process.execPath, [cliPath, 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = logCollector();
  const stderr = logCollector();
  child.stdout!.on('data', (chunk: Buffer) => stdout.chunk(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => stderr.chunk(chunk.toString()));
  const exited = exitOf(child);
  try {
    const banner = await Promise.race([stderr.waitFor(/listening on http:\/\//, 30_000), stdout.waitFor(/listening on http:\/\//, 30_000)]);
    const url = /listening on (http:\/\/[^\s,]+)/.exec(banner)![1]!;
    assert.is((await fetch(`${url}/v2/docker-local/app/tags/list?probe=1`)).status, 404);
    assert.match(await stdout.waitFor('/v2/docker-local/app/tags/list?probe=1'), /^\S+ info 127\.0\.0\.1 - "GET \/v2\/docker-local\/app\/tags\/list\?probe=1" 404 /);
    child.kill('SIGHUP');
    assert.match(await stderr.waitFor('reload:'), /^\S+ info reload: /);
    assert.not.ok(stderr.lines.some((line) => line.includes('probe=1')), 'no access line on standard error');
    assert.not.ok(stdout.lines.some((line) => line.includes('reload:')), 'no operational line on standard output');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('readiness: a listener that is not listening makes the server not ready, and says so', async () => {
  const dir = await tempDir();
  const store = await openConfiguredStore(validateConfig({ dataDir: join(dir, 'data'), repositories: { 'docker-local': { type: 'local' } } }, { baseDir: dir }), { recover: false, log: () => undefined });
  const listening = createServer();
  const stopped = createServer();
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  try {
    assert.equal(await readiness({ store, servers: () => [listening] })(), { ready: true, reasons: [] });
    assert.equal(await readiness({ store, servers: () => [listening, stopped] })(), { ready: false, reasons: ['1 of 2 listeners not listening'] });
  } finally {
    listening.close();
    await store.close();
  }
});

test('SIGINT on wharf serve with workers: 2 stops the primary and every worker, exit 0', async () => {
  const dir = await tempDir();
  const wharf = await spawnWharf(join(dir, 'data'), { config: 'workers: 2\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n' });
  try {
    // The primary's children, from /proc (field 4 of /proc/<pid>/stat is the parent; no procps needed).
    const children = () => readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
      try {
        return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]) === wharf.child.pid;
      } catch {
        return false; // gone meanwhile
      }
    }).map(Number);
    await eventually('two workers run', async () => children().length === 2);
    const workers = children();
    assert.is((await fetch(`${wharf.url}/v2/`)).status, 200);
    const exited = exitOf(wharf.child);
    wharf.child.kill('SIGINT');
    assert.is(await exited, 0);
    assert.match(wharf.stderr() + wharf.log.lines.join('\n'), 'SIGINT: shutting down');
    const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    await eventually('no worker is left', async () => workers.every((pid) => !alive(pid)), 5_000);
  } finally {
    if (wharf.child.exitCode === null) wharf.child.kill('SIGKILL');
  }
});

test.run();
