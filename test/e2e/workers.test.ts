import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { parseDigest } from '../../src/oci/digest.js';
import { openStore } from '../../src/store/index.js';
import { eventually } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { addUsers, spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { workerPids, workerServing } from '../helpers/workers.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';
import { exitOf } from '../helpers/children.js';

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
  'downloads: { memory: 64MiB }',
  'trustedProxies: [127.0.0.2]', // the proxy of the offload test (clients connect from 127.0.0.1)
  'proxy: { offload: true }',
  'repositories:',
  '  docker-local: { type: local }',
  `  docker-remote: { type: remote, url: "${upstream.url}", offlineAfter: 2, retryAfter: 1h }`,
  `  docker-robot: { type: remote, url: "${upstream.url}", username: robot, password: token-pass }`,
  `  docker-anonymous: { type: remote, url: "${upstream.url}" }`,
  `  docker-spare: { type: remote, url: "${upstream.url}" }`, // for the tests after the breakers opened
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
function send(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer; agent?: Agent; read?: Promise<void> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = request(new URL(path, wharf.url), { method, agent: options.agent ?? false, headers: options.headers ?? admin }, (res) => {
      const chunks: Buffer[] = [];
      // `read`: the body is left unread (the server is held to the socket's buffers) until it settles.
      void (options.read ?? Promise.resolve()).then(() => {
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), localPort }));
      });
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
const remoteBlob = (name: string, digest: string, repository = 'docker-remote') => `/v2/${repository}/${name}/blobs/${digest}`;

/** A sample of the (aggregated) /metrics, by its exact series text. */
async function metric(series: string): Promise<number> {
  const text = (await send('GET', '/metrics', { headers: admin })).body.toString();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** The worker serving the connection from `localPort`. */
const workerOf = (localPort: number) => workerServing(wharf.child.pid!, { serverPort: Number(new URL(wharf.url).port), clientPort: localPort });

interface Connection { agent: Agent; worker: number }

/** A kept-alive connection (from the address `from`) served by a worker not in `not` (new connections until one is; bounded). */
async function connection({ not = [], from }: { not?: number[]; from?: string } = {}): Promise<Connection> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ...(from ? { localAddress: from } : {}) });
    const { status, localPort } = await send('GET', '/healthz', { agent });
    assert.is(status, 200);
    const worker = await workerOf(localPort);
    if (worker !== null && !not.includes(worker)) return { agent, worker };
    agent.destroy();
  }
  throw new Error(`no connection reached a worker other than ${not.join(', ')} in 40 tries`);
}

/** One kept-alive connection to each of `count` different workers. */
async function connections(count: number, from?: string): Promise<Connection[]> {
  const found: Connection[] = [];
  while (found.length < count) found.push(await connection({ not: found.map(({ worker }) => worker), ...(from ? { from } : {}) }));
  return found;
}

/** Blob bodies from the upstream wait after their first chunk until `release` (see CountingProxy.holdBlobs). */
function holdUpstream(): () => void {
  let release!: () => void;
  upstream.holdBlobs = new Promise((resolve) => { release = resolve; });
  return () => {
    upstream.holdBlobs = null;
    release();
  };
}

/** Cold pulls of `repository` that started or joined a fetch so far, on every worker. */
const cachePulls = async (repository = 'docker-remote') => await metric(`wharf_cache_misses_total{repository="${repository}"}`) + await metric(`wharf_cache_joins_total{repository="${repository}"}`);
/** Resolves once `count` more cold pulls than `before` have started or joined a fetch. */
const pullsInFlight = (before: number, count: number, repository?: string) => eventually(`${count} pulls started or joined a fetch`, async () => await cachePulls(repository) === before + count, 30_000);

/** The blob file's place below the data directory, as the proxy is told it (X-Accel-Redirect). */
const accelLocation = (digest: string) => `/_wharf/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;

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
    // downloads.memory (64 MiB) is split: each worker's window is a quarter, so together they hold no more.
    assert.is(await metric('wharf_downloads_memory_limit_bytes'), 64 << 20);
    assert.ok(await metric('wharf_downloads_memory_bytes') > 0, 'the leading worker holds the first chunk');
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
    await eventually('the fetch let its memory go', async () => await metric('wharf_downloads_memory_bytes') === 0);
  } finally {
    upstream.holdBlobs = null;
    release();
  }
});

test('a fetch whose commit fails fails its pulls on every worker, none left waiting; the next pull fetches again', async () => {
  const image = makeImage({ layers: 1, layerBytes: 24 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/uncommitted', image, 'v1');
  upstream.reset();
  const path = remoteBlob('team/uncommitted', layer.digest);
  const headers = await bearer('repository:docker-remote/team/uncommitted:pull');
  const four = await connections(4);
  // The metadata database refuses the blob's row: the commit fails after the digest verified.
  const database = new Database(join(dataDir, 'meta.db'));
  database.exec(`CREATE TRIGGER refuse_blob BEFORE INSERT ON blobs WHEN NEW.digest = '${layer.digest}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
  const release = holdUpstream();
  let read!: () => void;
  const reading = new Promise<void>((resolve) => { read = resolve; });
  try {
    const before = await cachePulls();
    // One pull per worker, the leader's included, each client reading nothing until the commit has failed.
    const pulls = four.map(({ agent }) => send('GET', path, { agent, headers, read: reading }).then(() => 'whole', (error: Error) => error.message));
    await pullsInFlight(before, 4);
    release();
    await wharf.log.waitFor(`${layer.digest} could not be cached`, 30_000);
    read();
    for (const outcome of await Promise.all(pulls)) {
      assert.is.not(outcome, 'whole', 'a body whose bytes are gone is cut, never sent short');
      assert.not.match(outcome, 'no answer within', 'cut at once, not left waiting');
    }
  } finally {
    release();
    read();
    database.exec('DROP TRIGGER IF EXISTS refuse_blob');
    database.close();
  }
  for (const { agent } of four) agent.destroy();
  // On every worker (new connections: the cut ones are gone), the failed fetch is forgotten.
  for (const { agent } of await connections(4)) {
    assert.is(sha256((await send('GET', path, { agent, headers })).body), layer.digest);
    agent.destroy();
  }
  assert.is(upstream.counts['GET blob'], 2, 'fetched once more after the failure, then cached');
});

test('proxy.offload with workers: every worker hands a committed blob to the proxy, none a blob another worker is fetching', async () => {
  // Connections from the trusted proxy, each to another worker.
  const four = await connections(4, '127.0.0.2');
  const offer = { 'X-Sendfile-Type': 'X-Accel-Redirect' };
  const local = randomBytes(300_000);
  const pushed = await send('POST', `/v2/docker-local/team/off/blobs/uploads/?digest=${sha256(local)}`, { body: local });
  assert.is(pushed.status, 201, pushed.body.toString());
  const image = makeImage({ layers: 1, layerBytes: 2 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/offload', image, 'v1');
  // Bearer tokens: a trusted proxy that names no client is not loopback all the way, so no Basic.
  const headers = { ...await bearer('repository:docker-remote/team/offload:pull'), ...offer };
  const localHeaders = await bearer('repository:docker-local/team/off:pull');
  const path = remoteBlob('team/offload', layer.digest);
  const release = holdUpstream();
  try {
    // Being fetched (its upstream held): each worker sends the bytes itself, the leader and its followers.
    const before = await cachePulls();
    const pulls = four.map(({ agent }) => send('GET', path, { agent, headers }));
    await pullsInFlight(before, 4);
    release();
    for (const answer of await Promise.all(pulls)) {
      assert.is(answer.headers['x-accel-redirect'], undefined);
      assert.is(sha256(answer.body), layer.digest);
    }
  } finally {
    release();
  }
  for (const { agent, worker } of four) {
    const answer = await send('GET', `/v2/docker-local/team/off/blobs/${sha256(local)}`, { agent, headers: { ...localHeaders, ...offer, Range: 'bytes=0-9' } });
    assert.is(await workerOf(answer.localPort), worker);
    assert.is(answer.status, 200);
    assert.is(answer.headers['x-accel-redirect'], accelLocation(sha256(local)));
    assert.is(answer.headers['docker-content-digest'], sha256(local));
    assert.is(answer.headers.etag, `"${sha256(local)}"`);
    assert.is(answer.body.length, 0);
    // Once the fetch has committed (its last note may reach this worker after its last byte), the proxy sends it.
    await eventually(`worker ${worker} hands the fetched blob over`, async () => (await send('GET', path, { agent, headers })).headers['x-accel-redirect'] === accelLocation(layer.digest));
    agent.destroy();
  }
});

test('20 concurrent pulls of one manifest tag across the workers cost one upstream GET', async () => {
  const image = makeImage({ layers: 1, layerBytes: 1000 });
  await seedImage(distribution.url, 'team/tagged', image, 'v1');
  upstream.reset();
  const headers = { ...await bearer('repository:docker-remote/team/tagged:pull'), Accept: 'application/vnd.oci.image.manifest.v1+json' };
  let release!: () => void;
  upstream.holdManifests = new Promise((resolve) => { release = resolve; });
  try {
    const joins = () => metric('wharf_cache_joins_total{repository="docker-remote"}');
    const before = await joins();
    // Each on a connection of its own, so on every worker; the upstream answers none until all joined the one fetch.
    const pulls = Promise.all(Array.from({ length: 20 }, () => send('GET', '/v2/docker-remote/team/tagged/manifests/v1', { headers })));
    await eventually('19 pulls joined the one fetch', async () => await joins() === before + 19, 30_000);
    release();
    for (const { status, headers: answered } of await pulls) {
      assert.is(status, 200);
      assert.is(answered['docker-content-digest'], image.digest);
    }
    assert.is(upstream.counts['GET manifest'], 1);
  } finally {
    upstream.holdManifests = null;
    release();
  }
});

test('an upload session goes on whichever worker gets each chunk: started on one, continued and finished on another', async () => {
  const first = await connection();
  const second = await connection({ not: [first.worker] });
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

test('a worker that dies is replaced, without start-up recovery: a fetch running on another worker goes on; the others serve meanwhile; the new one knows the open breaker', async () => {
  const image = makeImage({ layers: 1, layerBytes: 4 << 20 });
  const layer = image.layers[0]!;
  await seedImage(distribution.url, 'team/survivor', image, 'v1');
  upstream.reset();
  const path = remoteBlob('team/survivor', layer.digest, 'docker-spare');
  const { agent, worker: fetching } = await connection();
  const release = holdUpstream();
  let pull!: Promise<Answer>;
  try {
    const before = await cachePulls('docker-spare');
    pull = send('GET', path, { agent });
    await pullsInFlight(before, 1, 'docker-spare');
    // Its spool file is in tmp/, which start-up recovery empties: a worker starting now must not.
    assert.ok((await readdir(join(dataDir, 'tmp'))).length > 0, 'the fetch writes into tmp/');
    const victim = (await workers()).find((pid) => pid !== fetching)!;
    process.kill(victim, 'SIGKILL');
    await wharf.log.waitFor('starting another', 20_000);
    assert.is((await send('GET', '/v2/docker-local/team/none/manifests/v1')).status, 404);
    await wharf.log.waitFor('serves in place of the one that stopped', 20_000);
    const now = await workers();
    assert.is(now.length, 4);
    assert.not.ok(now.includes(victim));
  } finally {
    release();
  }
  assert.is(sha256((await pull).body), layer.digest);
  agent.destroy();
  const hex = layer.digest.slice('sha256:'.length);
  await eventually('the fetch committed its file', async () => (await readdir(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2))).catch((): string[] => [])).includes(hex));
  assert.is(sha256((await send('GET', path)).body), layer.digest);
  assert.is(upstream.counts['GET blob'], 1, 'one fetch, committed');
  // docker-remote's breaker, opened before the new worker started, is open on it too.
  const asked = upstream.connections();
  for (const { agent: each } of await connections(4)) {
    const answer = await send('GET', '/v2/docker-remote/team/gone/manifests/x', { agent: each });
    assert.is(answer.status, 503, 'marked offline on every worker');
    each.destroy();
  }
  assert.is(upstream.connections(), asked, 'no worker asked the upstream');
});

test('killed whole and restarted: the primary recovers what the kill left (a fetch\'s spool, a finish cut short) before any worker serves', async () => {
  const image = makeImage({ layers: 1, layerBytes: 2 << 20 });
  await seedImage(distribution.url, 'team/killed', image, 'v1');
  const release = holdUpstream();
  const before = await cachePulls('docker-spare');
  const pull = send('GET', remoteBlob('team/killed', image.layers[0]!.digest, 'docker-spare')).catch(() => null);
  await pullsInFlight(before, 1, 'docker-spare');
  const spools = await readdir(join(dataDir, 'tmp'));
  assert.ok(spools.length > 0, 'a fetch in flight has its spool in tmp/');
  const item = randomBytes(300_000);
  const location = (await send('POST', '/v2/docker-local/team/killed/blobs/uploads/')).headers.location!;
  assert.is((await send('PATCH', location, { body: item, headers: { ...admin, 'Content-Type': 'application/octet-stream' } })).status, 202);
  const uuid = new URL(location, wharf.url).pathname.split('/').at(-1)!;
  const pids = [wharf.child.pid!, ...await workers()];
  const exited = new Promise((resolve) => wharf.child.once('exit', resolve));
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await exited;
  await pull;
  release();
  const gone = (pid: number) => { try { process.kill(pid, 0); return false; } catch { return true; } };
  await eventually('every process is gone', async () => pids.every(gone));
  // What a finish cut short by the kill leaves (as test/e2e/upload-repair.test.ts builds it): the
  // session marked, the blob claimed, the bytes moved; no link.
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: false });
  await store.metadata.uploads.committing(uuid, sha256(item));
  await store.metadata.blobs.claim(sha256(item), item.length, Date.now());
  await store.blobs.sessions.commit(uuid, parseDigest(sha256(item))!);
  await store.close();
  wharf = await spawnWharf(dataDir, { config: config() });
  assert.equal((await readdir(join(dataDir, 'tmp'))).filter((name) => spools.includes(name)), [], 'the killed fetch\'s spool is gone');
  for (const { agent } of await connections(4)) {
    const session = await send('GET', location, { agent });
    assert.is(session.status, 404);
    assert.is((JSON.parse(session.body.toString()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
    assert.is(sha256((await send('GET', `/v2/docker-local/team/killed/blobs/${sha256(item)}`, { agent })).body), sha256(item), 'the finish was completed');
    agent.destroy();
  }
});

test('SIGHUP reloads every worker, logged once when all have it; a bad file is refused and the old configuration stays; SIGTERM stops them all, gracefully', async () => {
  const code = async (path: string) => (JSON.parse((await send('GET', path)).body.toString()) as { errors: { code: string }[] }).errors[0]!.code;
  assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'NAME_UNKNOWN');
  const changed = config().replace('  docker-local: { type: local }', '  docker-local: { type: local }\n  docker-two: { type: local }').replace('memory: 64MiB', 'memory: 128MiB');
  await writeFile(`${dataDir}.yaml`, changed);
  wharf.child.kill('SIGHUP');
  const applied = () => wharf.log.lines.filter((line) => line.includes('reload: applied repositories.docker-two')).length;
  const restart = () => wharf.log.lines.filter((line) => line.includes('reload: downloads.memory changed, which needs a restart')).length;
  await wharf.log.waitFor('reload: applied repositories.docker-two', 30_000);
  await wharf.log.waitFor('reload: downloads.memory changed, which needs a restart', 10_000);
  for (let i = 0; i < 8; i++) assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'MANIFEST_UNKNOWN', 'the new repository, on every worker');
  assert.is(restart(), 1, 'what needs a restart is said once too');
  await writeFile(`${dataDir}.yaml`, 'repositories: [nonsense\n');
  wharf.child.kill('SIGHUP');
  await wharf.log.waitFor('reload refused', 20_000);
  for (let i = 0; i < 8; i++) assert.is(await code('/v2/docker-two/team/x/manifests/v1'), 'MANIFEST_UNKNOWN', 'still the configuration before');
  assert.is(applied(), 1, 'said once for the four workers; no worker took the bad file');
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
  const exited = exitOf(wharf.child);
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
