import { X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log/logger.js';
import { startServer } from '../../src/server.js';
import { blob, makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { renewPem } from '../helpers/pem.js';
import { errorCode, pushImage } from '../helpers/registry.js';
import { runCli, spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { terminate } from '../helpers/children.js';

// Reloading without a restart: RunningServer.reload(config) and SIGHUP on `wharf serve` take a
// new configuration, certificates and permissions (through a hook) while connections stay up;
// a bad file is refused and the old configuration keeps serving; what needs a restart says so.

function stop(wharf: WharfProcess): Promise<number | null> {
  return terminate(wharf.child);
}

/** The certificate served to a client that connects by IP address and sends no SNI. */
function servedByIp(url: string): Promise<X509Certificate> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

function config(dir: string, extra: Record<string, unknown> = {}): Config {
  return validateConfig({
    dataDir: join(dir, 'data'), certsDir: join(dir, 'certs'), listeners: [{ address: '127.0.0.1', port: 0 }],
    repositories: { 'docker-local': { type: 'local' } }, log: { access: false }, auth: { enabled: false }, ...extra,
  }, { baseDir: dir });
}

test('reload(config): repositories added and removed, trusted proxies and access log switched, a hook told; no restart', async () => {
  const dir = await tempDir();
  const log = logCollector();
  const access = logCollector();
  const seen: Config[] = [];
  const server = await startServer(config(dir), {
    logger: createLogger({ format: 'text', write: log.write }), writeLog: access.write, reloadHooks: [{ update: (next) => { seen.push(next); } }],
  });
  const base = server.urls[0]!;
  try {
    await pushImage(base, 'docker-local/team/app', makeImage(), '1.0');
    assert.is(await errorCode(await fetch(`${base}/v2/team-builds/app/tags/list`)), 'NAME_UNKNOWN');
    const report = await server.reload(config(dir, {
      repositories: { 'docker-local': { type: 'local' }, 'team-builds': { type: 'local' } }, trustedProxies: ['127.0.0.1'], log: { access: true },
    }));
    assert.equal(report.applied.sort(), ['log.access', 'repositories.team-builds', 'trustedProxies']);
    assert.equal(report.needsRestart, []);
    assert.is(seen.length, 1, 'the permissions hook got the new config');
    assert.ok(seen[0]!.repositories['team-builds']);
    await pushImage(base, 'team-builds/app', makeImage(), '2.0');
    const tags = await fetch(`${base}/v2/docker-local/team/app/tags/list`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
    assert.equal(await tags.json(), { name: 'docker-local/team/app', tags: ['1.0'] }, 'the unchanged repository kept its data');
    assert.match(await access.waitFor('/v2/docker-local/team/app/tags/list'), /^\S+ info 203\.0\.113\.9 /, 'access log on, proxy trusted');
    assert.match(await log.waitFor('reload: applied'), 'info reload: applied trustedProxies, repositories.team-builds, log.access');
    // Removed again: refused from the next request on.
    await server.reload(config(dir));
    assert.is(await errorCode(await fetch(`${base}/v2/team-builds/app/tags/list`)), 'NAME_UNKNOWN');
  } finally {
    await server.close();
  }
});

test('reload(config): a hook that refuses keeps the old configuration whole; listener changes wait for a restart', async () => {
  const dir = await tempDir();
  const log = logCollector();
  let refuse = true;
  const server = await startServer(config(dir), {
    logger: createLogger({ format: 'text', write: log.write }),
    reloadHooks: [{ update: () => { if (refuse) throw new Error('auth.users.alice: unknown role "superuser"'); } }],
  });
  const base = server.urls[0]!;
  try {
    const added = config(dir, { repositories: { 'docker-local': { type: 'local' }, extra: { type: 'local' } } });
    let refusal = '';
    await server.reload(added).catch((error: Error) => { refusal = error.message; });
    assert.match(refusal, 'auth.users.alice');
    assert.is(await errorCode(await fetch(`${base}/v2/extra/app/tags/list`)), 'NAME_UNKNOWN', 'nothing of the refused config applied');
    refuse = false;
    const moved = config(dir, { repositories: { 'docker-local': { type: 'local' }, extra: { type: 'local' } }, listeners: [{ address: '127.0.0.1', port: 6553 }] });
    const report = await server.reload(moved);
    assert.equal(report.needsRestart, ['listeners']);
    assert.match(await log.waitFor('needs a restart'), 'warn reload: listeners changed, which needs a restart; the old value stays in effect until then');
    assert.is((await fetch(`${base}/v2/`)).status, 200, 'still on the old port');
    const body = (await (await fetch(`${base}/v2/extra/app/tags/list`)).json()) as { errors: { message: string }[] };
    assert.match(body.errors[0]!.message, 'no image app in extra', 'the repository is there now, with no image');
  } finally {
    await server.close();
  }
});

test('SIGHUP on wharf serve: reloads without dropping a transfer in flight, refuses a bad file naming the key, keeps serving', async () => {
  const dataDir = await tempDir();
  const wharf = await spawnWharf(dataDir);
  try {
    const configFile = `${dataDir}.yaml`;
    // A chunked upload in flight across the reload.
    const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
    const location = new URL(started.headers.get('location')!, wharf.url);
    const item = blob(Buffer.alloc(200_000, 3));
    const patch = httpRequest(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } });
    const patched = new Promise<number>((resolve, reject) => {
      patch.on('response', (response) => { response.resume(); resolve(response.statusCode!); });
      patch.on('error', reject);
    });
    patch.write(item.bytes.subarray(0, 100_000));

    await writeFile(configFile, 'repositories:\n  docker-local: { type: local }\n  docker-hub: { type: remote, url: "https://registry-1.docker.io" }\nlog: { access: false }\nauth: { enabled: false }\n');
    wharf.child.kill('SIGHUP');
    await wharf.log.waitFor('reload: applied repositories.docker-hub');
    patch.end(item.bytes.subarray(100_000));
    assert.is(await patched, 202, 'the upload went on through the reload');
    location.searchParams.set('digest', item.digest);
    const done = await fetch(location, { method: 'PUT' });
    assert.is(done.status, 201, await done.text());
    assert.is((await fetch(`${wharf.url}/v2/docker-hub/`)).status, 200, 'the new repository is served');

    await writeFile(configFile, 'repositories:\n  docker_local: { type: local }\n');
    wharf.child.kill('SIGHUP');
    const refused = await wharf.log.waitFor('reload refused');
    assert.match(refused, 'error reload refused: config error: repositories.docker_local: a repository key is lowercase letters');
    assert.match(refused, 'still serving the previous configuration');
    assert.is((await fetch(`${wharf.url}/v2/docker-hub/`)).status, 200);
    assert.is(wharf.child.exitCode, null, 'SIGHUP does not stop the server');
  } finally {
    assert.is(await stop(wharf), 0);
  }
});

test('tls files: a certificate replaced on disk reaches clients that connect by IP (no SNI) too', async () => {
  const dir = await tempDir('wharf-pem-');
  const generate = (days: string) => renewPem(dir, days);
  await generate('2');
  const log = logCollector();
  const server = await startServer(validateConfig({
    dataDir: join(dir, 'data'), certsDir: join(dir, 'certs'), log: { access: false }, auth: { enabled: false },
    listeners: [{ address: '127.0.0.1', port: 0, tls: { mode: 'files', certificates: [{ cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }] } }],
    repositories: { 'docker-local': { type: 'local' } },
  }, { baseDir: dir }), { logger: createLogger({ format: 'text', write: log.write }) });
  try {
    const before = await servedByIp(server.urls[0]!);
    await generate('3');
    await log.waitFor('serving the new certificate in');
    const after = await servedByIp(server.urls[0]!);
    assert.is.not(after.serialNumber, before.serialNumber);
    assert.is(after.fingerprint256, new X509Certificate(await readFile(join(dir, 'cert.pem'))).fingerprint256);
  } finally {
    await server.close();
  }
});

test('wharf certs --regenerate reaches a running wharf serve, and says so', async () => {
  const dataDir = await tempDir();
  const certsDir = join(dataDir, 'certs');
  const wharf = await spawnWharf(dataDir, {
    config: `certsDir: ${certsDir}\nlisteners:\n  - { address: 127.0.0.1, port: 0, tls: { mode: self-signed } }\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n`,
  });
  try {
    const before = await servedByIp(wharf.url);
    const result = await runCli(['certs', '--config', `${dataDir}.yaml`, '--regenerate']);
    assert.is(result.code, 0, result.stderr);
    assert.match(result.stdout, `Issued a new server certificate: ${join(certsDir, 'server.crt')}`);
    assert.match(result.stdout, 'A running wharf serve with this certsDir serves it from the next connection');
    await wharf.log.waitFor('certsDir: serving the new certificate');
    const after = await servedByIp(wharf.url);
    assert.is.not(after.serialNumber, before.serialNumber);
    assert.ok(after.verify(new X509Certificate(await readFile(join(certsDir, 'ca.crt'))).publicKey), 'under the same CA');
  } finally {
    await stop(wharf);
  }
});

test.run();
