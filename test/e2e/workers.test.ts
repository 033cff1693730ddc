import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { addUsers, spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { workerPids, workerServing } from '../helpers/workers.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// `wharf serve` with workers: 4 (node:cluster). Connections are handed to the workers in turn, so
// requests sent on connections of their own land on different workers; what one worker starts,
// the others see: one upstream fetch per digest, upload sessions, the circuit breaker, failed
// logins, metrics, reloads. Shutdown stops them all; a worker that dies is replaced.

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let distribution: Distribution;
let upstream: CountingProxy;
let dataDir: string;
let wharf: WharfProcess;

const config = (extra = '') => [
  'workers: 4',
  `certsDir: ${dataDir}/certs`,
  'repositories:',
  '  docker-local: { type: local }',
  `  docker-remote: { type: remote, url: "${upstream.url}", offlineAfter: 2, retryAfter: 1h }`,
  `  docker-robot: { type: remote, url: "${upstream.url}", username: robot, password: token-pass }`,
  `  docker-anonymous: { type: remote, url: "${upstream.url}" }`,
  'log: { access: false }',
  'auth: { enabled: true, throttle: { perUser: 3 } }',
  extra,
].join('\n');

test.before(async () => {
  distribution = await startDistribution();
  upstream = await startCountingProxy(distribution.url);
  dataDir = await tempDir();
  await writeFile(`${dataDir}.yaml`, config());
  await addUsers(loadConfig(`${dataDir}.yaml`, { data: dataDir }), [{ name: 'ci', password: 'right-password' }, { name: 'root', password: 'root-password', admin: true }]);
  wharf = await spawnWharf(dataDir, { config: config() });
});
test.after(async () => {
  if (wharf.child.exitCode === null) wharf.child.kill('SIGKILL');
  await upstream.stop();
  await distribution.stop();
});

const admin = { Authorization: `Basic ${Buffer.from('root:root-password').toString('base64')}` };

interface Answer { status: number; headers: IncomingHttpHeaders; body: Buffer; localPort: number }

/** One request on a connection of its own (so consecutive ones reach different workers), or on `agent`'s. */
function send(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = request(new URL(path, wharf.url), { method, agent: options.agent ?? false, headers: options.headers ?? admin }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), localPort }));
      res.on('error', reject);
      // A body cut short ends in 'close' without 'end' (and without an error): fail, do not wait.
      res.on('close', () => { if (!res.complete) reject(new Error(`${method} ${path}: the body ended early`)); });
    });
    req.on('socket', (socket) => {
      if (socket.localPort) localPort = socket.localPort; // a kept-alive connection
      else socket.once('connect', () => { localPort = socket.localPort!; });
    });
    req.on('error', reject);
    // Bounded: a request stuck in a worker fails the test instead of hanging it.
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${path}: no answer within 60 s`)));
    req.end(options.body);
  });
}

const workers = () => workerPids(wharf.child.pid!);

/** A sample of the (aggregated) /metrics, by its exact series text. */
async function metric(series: string): Promise<number> {
  const text = (await send('GET', '/metrics', { headers: admin })).body.toString();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** The worker serving the connection from `localPort`. */
const workerOf = (localPort: number) => workerServing(wharf.child.pid!, { serverPort: Number(new URL(wharf.url).port), clientPort: localPort });

/** A kept-alive connection served by a worker other than `not` (new connections until one is; bounded). */
async function connection(not?: number): Promise<{ agent: Agent; worker: number }> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const { status, localPort } = await send('GET', '/v2/', { agent });
    assert.is(status, 200);
    const worker = await workerOf(localPort);
    if (worker !== null && worker !== not) return { agent, worker };
    agent.destroy();
  }
  throw new Error(`no connection reached a worker other than ${not} in 40 tries`);
}

/** A Bearer token for `scope` from Wharf's token endpoint (one login: Basic on 20 concurrent requests would be throttled). */
async function bearer(scope: string): Promise<Record<string, string>> {
  const answer = await send('GET', `/v2/token?service=wharf&scope=${scope}`);
  assert.is(answer.status, 200, answer.body.toString());
  return { Authorization: `Bearer ${(JSON.parse(answer.body.toString()) as { token: string }).token}` };
}

test('four workers serve; 20 concurrent cold pulls across them cost one upstream GET', async () => {
  assert.is((await workers()).length, 4);
  const image = makeImage({ layers: 1, layerBytes: 24 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/big', image, 'v1');
  upstream.reset();
  // The upstream's body waits after its first chunk until all 20 requests have joined the one
  // fetch, so the other workers follow it while it runs (not hits once it is committed).
  let release!: () => void;
  upstream.holdBlobs = new Promise((resolve) => { release = resolve; });
  const headers = await bearer('repository:docker-remote/team/big:pull');
  try {
    const pulls = Promise.all(Array.from({ length: 20 }, () => send('GET', `/v2/docker-remote/team/big/blobs/${layer.digest}`, { headers })));
    const misses = () => metric('wharf_cache_misses_total{repository="docker-remote"}');
    const joins = () => metric('wharf_cache_joins_total{repository="docker-remote"}');
    await eventually('all 20 pulls joined the one fetch', async () => await misses() + await joins() === 20, 60_000);
    release();
    for (const { status, body } of await pulls) {
      assert.is(status, 200);
      assert.is(sha256(body), layer.digest);
    }
    assert.is(upstream.counts['GET blob'], 1);
    assert.is(upstream.blobBytes(), layer.bytes.length, 'the blob crossed from the upstream once');
    // One set of metrics: every worker's counts, added up by the primary.
    assert.is(await metric('wharf_http_requests_total{route="blob",method="GET",status="200"}'), 20);
    assert.is(await misses(), 1);
    assert.is(await joins(), 19);
  } finally {
    upstream.holdBlobs = null;
    release();
  }
});

test('an upload session goes on whichever worker gets each chunk: started on one, continued and finished on another', async () => {
  const first = await connection();
  const second = await connection(first.worker);
  assert.is.not(first.worker, second.worker);
  const chunks = [randomBytes(700_000), randomBytes(300_000), randomBytes(500_000), randomBytes(100)];
  const digest = sha256(Buffer.concat(chunks));
  let location = (await send('POST', '/v2/docker-local/team/up/blobs/uploads/', { agent: first.agent })).headers.location!;
  let offset = 0;
  for (const [index, chunk] of chunks.entries()) {
    const on = index % 2 === 0 ? second : first; // POST on the first worker, then alternating
    const answer = await send('PATCH', location, { agent: on.agent, body: chunk, headers: { ...admin, 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` } });
    assert.is(answer.status, 202, answer.body.toString());
    assert.is(await workerOf(answer.localPort), on.worker, 'the chunk went to the worker meant');
    offset += chunk.length;
    assert.is(answer.headers.range, `0-${offset - 1}`);
    location = answer.headers.location!;
  }
  const done = await send('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { agent: second.agent });
  assert.is(done.status, 201, done.body.toString());
  assert.is(sha256((await send('GET', `/v2/docker-local/team/up/blobs/${digest}`)).body), digest);
  first.agent.destroy();
  second.agent.destroy();
});

test('one upstream token cache: layers fetched on different workers cost one token request', async () => {
  const image = makeImage({ layers: 6, layerBytes: 10_000 });
  await seedImage(distribution.url, 'team/robot', image, 'v1');
  upstream.bearer = { user: 'robot', password: 'token-pass' };
  upstream.reset();
  try {
    for (const layer of image.layers) assert.is(sha256((await send('GET', `/v2/docker-robot/team/robot/blobs/${layer.digest}`)).body), layer.digest);
    assert.is(upstream.counts['GET token'], 1, 'the token one worker got served the others');
    // Each layer fetched once with the token; a worker's first request, sent before it knows the
    // upstream wants a token, is answered 401 (the challenge is learnt per worker, at most 4).
    assert.is(upstream.authorizations.filter((authorization) => authorization.startsWith('Bearer ')).length, 6);
    assert.ok(upstream.counts['GET blob']! - 6 <= 4, `${upstream.counts['GET blob']! - 6} challenges for 4 workers`);
    // The cache is one, but each repository's tokens are its own: docker-anonymous, on the same
    // upstream and image, is not served the robot's token on any worker.
    for (let i = 0; i < 4; i++) assert.is.not((await send('GET', '/v2/docker-anonymous/team/robot/manifests/v1')).status, 200);
    assert.is(upstream.authorizations.filter((authorization) => authorization.startsWith('Bearer ')).length, 6, 'no request went with the robot\'s token');
  } finally {
    upstream.bearer = null;
  }
});

test('failed logins count across workers, concurrent ones too: then every login is refused on any of them', async () => {
  const login = (password: string) => send('GET', '/v2/token?service=wharf', { headers: { Authorization: `Basic ${Buffer.from(`ci:${password}`).toString('base64')}` } });
  // Three at once, on three workers: none of them may be lost to another's.
  for (const { status } of await Promise.all([login('wrong'), login('wrong'), login('wrong')])) assert.is(status, 401);
  for (let i = 0; i < 4; i++) assert.is((await login('right-password')).status, 429, 'throttled on every worker');
});

test('the circuit breaker opens for every worker: after two failures none asks the upstream', async () => {
  upstream.fault = 'down';
  for (let i = 0; i < 2; i++) assert.is((await send('GET', `/v2/docker-remote/team/gone/manifests/v${i}`)).status, 502);
  const asked = upstream.connections();
  for (let i = 0; i < 6; i++) {
    const answer = await send('GET', `/v2/docker-remote/team/gone/manifests/w${i}`);
    assert.is(answer.status, 503);
    assert.match(answer.body.toString(), 'marked offline');
  }
  assert.is(upstream.connections(), asked, 'no worker asked the upstream again');
  upstream.fault = 'none';
});

test('a worker that dies is replaced, and the others serve meanwhile', async () => {
  const [victim] = await workers();
  process.kill(victim!, 'SIGKILL');
  await wharf.log.waitFor('starting another', 20_000);
  assert.is((await send('GET', '/v2/docker-local/team/none/manifests/v1')).status, 404);
  await wharf.log.waitFor('serves in place of the one that stopped', 20_000);
  const now = await workers();
  assert.is(now.length, 4);
  assert.not.ok(now.includes(victim!));
});

test('SIGHUP reloads every worker; a bad file is refused and the old configuration stays; SIGTERM stops them all, gracefully', async () => {
  const code = async (path: string) => (JSON.parse((await send('GET', path)).body.toString()) as { errors: { code: string }[] }).errors[0]!.code;
  assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'NAME_UNKNOWN');
  await writeFile(`${dataDir}.yaml`, config().replace('  docker-local: { type: local }', '  docker-local: { type: local }\n  docker-two: { type: local }'));
  wharf.child.kill('SIGHUP');
  const applied = () => wharf.log.lines.filter((line) => line.includes('reload: applied repositories.docker-two')).length;
  await eventually('every worker applied it', async () => applied() === 4, 30_000);
  for (let i = 0; i < 8; i++) assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'MANIFEST_UNKNOWN', 'the new repository, on every worker');
  await writeFile(`${dataDir}.yaml`, 'repositories: [nonsense\n');
  wharf.child.kill('SIGHUP');
  await wharf.log.waitFor('reload refused', 20_000);
  for (let i = 0; i < 8; i++) assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'MANIFEST_UNKNOWN', 'still the configuration before');
  assert.is(applied(), 4, 'no worker took the bad file');
  const pids = await workers();
  // Graceful: a cold pull in flight when SIGTERM arrives (its upstream held) is answered whole.
  const image = makeImage({ layers: 1, layerBytes: 4 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/late', image, 'v1');
  let release!: () => void;
  upstream.holdBlobs = new Promise((resolve) => { release = resolve; });
  const misses = () => metric('wharf_cache_misses_total{repository="docker-remote"}');
  const before = await misses();
  const pull = send('GET', `/v2/docker-remote/team/late/blobs/${layer.digest}`, { headers: await bearer('repository:docker-remote/team/late:pull') });
  await eventually('the pull is in flight', async () => await misses() === before + 1, 30_000);
  const exited = new Promise<number | null>((resolve) => wharf.child.once('exit', (exitCode) => resolve(exitCode)));
  wharf.child.kill('SIGTERM');
  await wharf.log.waitFor('SIGTERM: shutting down', 20_000);
  upstream.holdBlobs = null;
  release();
  const answer = await pull;
  assert.is(answer.status, 200);
  assert.is(sha256(answer.body), layer.digest, 'the pull in flight finished whole');
  assert.is(await exited, 0);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'the worker is gone');
});

test.run();
