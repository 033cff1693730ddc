import { connect as http2Connect } from 'node:http2';
import { createServer } from 'node:net';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob, makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { freePort } from '../helpers/ports.js';
import { pushImage, seedImage } from '../helpers/registry.js';
import { runCli, spawnWharf, startWharf, tempDir } from '../helpers/server.js';
import { terminate } from '../helpers/children.js';
import { startDistribution } from '../helpers/upstream.js';

// Log lines as an operator reads them: a timestamp and a level on each, text or JSON; the access
// log with body bytes (HTTP/1.1 and h2 alike), repository, host and user agent; failures naming
// their cause; an aborted request logged as aborted.

const timestamped = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|error) /;

/** A blob GET and a monolithic upload over HTTP/2, through node:http2 trusting Wharf's CA. */
async function overHttp2(url: string, ca: string, requests: { method: string; path: string; body?: Buffer }[]): Promise<void> {
  const session = http2Connect(url, { ca });
  try {
    for (const item of requests) {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':method': item.method, ':path': item.path, 'user-agent': 'h2-test/1' });
        stream.on('response', () => stream.resume());
        stream.on('end', resolve);
        stream.on('error', reject);
        stream.end(item.body);
      });
    }
  } finally {
    session.close();
  }
}

test('access log: body bytes in and out over HTTP/1.1 and h2 (no headers, no NaN), repository, host, agent, user', async () => {
  const log = logCollector();
  const wharf = await startWharf({
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }],
    accessLog: log.write,
  });
  try {
    const layer = blob(Buffer.alloc(70_000, 7));
    const pushed = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/?digest=${layer.digest}`, {
      method: 'POST', body: layer.bytes, headers: { 'User-Agent': 'skopeo/1.9.3' },
    });
    assert.is(pushed.status, 201);
    await (await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${layer.digest}`)).arrayBuffer();
    const post = await log.waitFor(/"POST \/v2\/docker-local\/team\/app\/blobs\/uploads\//);
    assert.match(post, timestamped);
    assert.match(post, / 201 0 [\d.]+ms repo=docker-local host=127\.0\.0\.1:\d+ agent="skopeo\/1\.9\.3" in=70000$/);
    assert.match(post, /^\S+ info 127\.0\.0\.1 - "POST/, 'no user yet: "-"');
    const get = await log.waitFor(/"GET \/v2\/docker-local\/team\/app\/blobs\//);
    assert.match(get, / 200 70000 /);

    const ca = await readFile(wharf.caPath!, 'utf8');
    const other = blob(Buffer.alloc(33_333, 9));
    await overHttp2(wharf.urls[1]!, ca, [
      { method: 'POST', path: `/v2/docker-local/team/h2/blobs/uploads/?digest=${other.digest}`, body: other.bytes },
      { method: 'GET', path: `/v2/docker-local/team/h2/blobs/${other.digest}` },
    ]);
    const h2Post = await log.waitFor('/team/h2/blobs/uploads/');
    assert.match(h2Post, / 201 0 [\d.]+ms repo=docker-local host=127\.0\.0\.1:\d+ agent="h2-test\/1" in=33333$/);
    const h2Get = await log.waitFor(/"GET \/v2\/docker-local\/team\/h2\/blobs\//);
    assert.match(h2Get, / 200 33333 /);
    assert.not.match(log.lines.join('\n'), 'NaN');
  } finally {
    await wharf.cleanup();
  }
});

test('log.format json: every access and operational line is one JSON object with time and level', async () => {
  const access = logCollector();
  const operations = logCollector();
  const port = await freePort(); // nothing listens: the upstream is unreachable
  const wharf = await startWharf({
    repositories: { 'docker-local': { type: 'local' }, 'docker-hub': { type: 'remote', url: `http://127.0.0.1:${port}`, offlineAfter: 100 } },
    accessLog: access.write, log: operations.write, logFormat: 'json',
  });
  try {
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '1.0');
    assert.is((await fetch(`${wharf.url}/v2/docker-hub/team/app/manifests/1.0`, { headers: { 'User-Agent': 'podman/4.3.1' } })).status, 502);
    const line = JSON.parse(await access.waitFor('/v2/docker-hub/team/app/manifests/1.0')) as Record<string, unknown>;
    assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
    assert.is(line.level, 'info');
    assert.is(line.method, 'GET');
    assert.is(line.status, 502);
    assert.is(line.repository, 'docker-hub');
    assert.is(line.userAgent, 'podman/4.3.1');
    assert.is(line.user, null);
    // The upstream failure names the cause, once.
    const failure = JSON.parse(await operations.waitFor('ECONNREFUSED')) as Record<string, unknown>;
    assert.is(failure.level, 'warn');
    assert.match(String(failure.message), `docker-hub: GET manifests/1.0 of team/app failed: upstream http://127.0.0.1:${port} is unreachable: ECONNREFUSED`);
    for (const text of [...access.lines, ...operations.lines]) assert.ok(JSON.parse(text).time, text);
  } finally {
    await wharf.cleanup();
  }
});

test('a stale tag: the Warning names no upstream; the log names the upstream failure once', async () => {
  const distribution = await startDistribution();
  const log = logCollector();
  const wharf = await startWharf({ repositories: { hub: { type: 'remote', url: distribution.url, metadataTtl: '0s', offlineAfter: 100 } }, log: log.write });
  try {
    await seedImage(distribution.url, 'team/app', makeImage(), 'latest');
    assert.is((await fetch(`${wharf.url}/v2/hub/team/app/manifests/latest`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
    await distribution.stop();
    const stale = await fetch(`${wharf.url}/v2/hub/team/app/manifests/latest`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.is(stale.status, 200);
    const warning = stale.headers.get('warning') ?? '';
    assert.is(warning, '110 wharf "Response is Stale: the upstream failed, this is the cached copy"');
    const line = await log.waitFor('serving stale');
    assert.match(line, timestamped);
    assert.match(line, `upstream ${distribution.url} is unreachable: ECONNREFUSED`);
    assert.is(line.split(distribution.url).length, 2, 'the upstream is named once');
  } finally {
    await wharf.cleanup();
    await distribution.stop();
  }
});

test('an internal error is logged at level error with its cause; the client gets the spec error', async () => {
  const log = logCollector();
  const wharf = await startWharf({ log: log.write });
  try {
    await rm(join(wharf.dataDir, 'tmp'), { recursive: true }); // where blob writes begin
    const layer = blob(Buffer.from('some bytes'));
    const response = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/?digest=${layer.digest}`, { method: 'POST', body: layer.bytes });
    assert.is(response.status, 500);
    assert.is(((await response.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNKNOWN');
    const line = await log.waitFor('internal error');
    assert.match(line, timestamped);
    assert.match(line, /^\S+ error internal error on POST \/v2\/docker-local\/team\/app\/blobs\/uploads\/: \S/);
    assert.match(line, / stack="/, 'the stack on the same line');
  } finally {
    await wharf.cleanup();
  }
});

test('a client that aborts a chunked PATCH is logged as aborted, not as an internal error', async () => {
  const log = logCollector();
  const access = logCollector();
  const wharf = await startWharf({ log: log.write, accessLog: access.write });
  try {
    const started = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
    const location = new URL(started.headers.get('location')!, wharf.url);
    await new Promise<void>((resolve) => {
      const request = httpRequest(location, { method: 'PATCH', headers: { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' } });
      request.on('error', () => resolve());
      request.write(Buffer.alloc(100_000, 1), () => setImmediate(() => request.destroy()));
    });
    const line = await access.waitFor('"PATCH ');
    assert.match(line, / aborted$/);
    await log.waitFor('the client closed the connection before the request was complete');
    assert.not.match(log.lines.join('\n'), 'internal error');
    // The session is still usable.
    assert.is((await fetch(location)).status, 204);
  } finally {
    await wharf.cleanup();
  }
});

test('a listener that cannot bind names itself and the cause; exit 1', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  const dir = await tempDir('wharf-bind-');
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, 'repositories:\n  docker-local: { type: local }\n');
  try {
    const result = await runCli(['serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data')]);
    assert.is(result.code, 1);
    assert.match(result.stderr, timestamped);
    assert.match(result.stderr, `error not started: cannot listen on 127.0.0.1:${port} (listeners[0]): EADDRINUSE, another process is listening there`);
  } finally {
    busy.close();
  }
});

/**
 * A preload that emits the same process warning twice once Wharf has written its first output
 * (after it has read its configuration): the test's own warning, so that the test does not
 * depend on which warnings this Node version or a library emits (the AWS SDK's
 * NodeVersionSupportWarning, say, appears on Node < 22 only).
 */
async function warningPreload(): Promise<NodeJS.ProcessEnv> {
  const file = join(await tempDir(), 'warn.cjs');
  await writeFile(file, `let emitted = false;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write;
  stream.write = function (...args) {
    if (!emitted) {
      emitted = true;
      setImmediate(() => { for (let i = 0; i < 2; i++) process.emitWarning('the test\\'s notice\\nover two lines', 'WharfTestWarning'); });
    }
    return write.apply(this, args);
  };
}\n`);
  return { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${file}`.trim() };
}

test('process warnings (a deprecation, a library\'s notice) are log lines: serve and a CLI command print each once, with a timestamp and a level', async () => {
  const env = await warningPreload();
  const dataDir = await tempDir();
  const served = await spawnWharf(dataDir, { env });
  try {
    await served.log.waitFor('WharfTestWarning', 10_000);
  } finally {
    assert.is(await terminate(served.child), 0);
  }
  const lines = served.stderr().trimEnd().split('\n');
  for (const line of lines) assert.match(line, timestamped);
  assert.equal(lines.filter((line) => line.includes('WharfTestWarning')).map((line) => line.replace(/^\S+ /, '')), ['warn WharfTestWarning: the test\'s notice over two lines'], served.stderr());
  const file = join(dataDir, 'json.yaml');
  await writeFile(file, `dataDir: ${dataDir}\nrepositories:\n  docker-local: { type: local }\nlog: { format: json }\n`);
  const gc = await runCli(['gc', '--config', file], env);
  assert.is(gc.code, 0, gc.stderr);
  const entries = gc.stderr.trimEnd().split('\n').map((line) => JSON.parse(line) as { time: string; level: string; message: string });
  assert.equal(entries.filter((entry) => entry.message.includes('WharfTestWarning')).map((entry) => [entry.level, entry.message]), [['warn', 'WharfTestWarning: the test\'s notice over two lines']], gc.stderr);
});

test.run();
