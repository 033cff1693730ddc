import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_INDEX } from '../../src/oci/mediatypes.js';
import { blob, makeImage, makeIndex, type Image } from '../helpers/images.js';
import { dockerClient, pushWith } from '../helpers/auth.js';
import { errorCode, heldChunk, pushImage, putManifest } from '../helpers/registry.js';
import { postgresDatabase, stopPostgres } from '../helpers/postgres.js';
import { s3Keys, s3Storage, type S3Settings } from '../helpers/s3.js';
import { switchable } from '../helpers/switchable.js';
import { spawnWharf, startWharf, tempDir, testStorage, type TestServer } from '../helpers/server.js';
import { Agent } from 'undici';
import pg from 'pg';

// On PostgreSQL + S3 nothing lives only on the local disk: a server started with an empty data
// directory (a new node, a lost disk) serves every image and continues an upload session.

test('a restart on PostgreSQL + S3 with an empty local disk serves every image and resumes an upload', async () => {
  const storage = await testStorage('s3-postgres');
  const first = await startWharf({ storage });
  const images: [string, Image][] = [['team/a', makeImage()], ['team/b', makeImage({ layers: 3 })], ['multi', makeImage({ architecture: 'arm64' })]];
  for (const [name, image] of images) await pushImage(first.url, `docker-local/${name}`, image, '1');
  const index = makeIndex([images[2]![1]]);
  assert.is((await putManifest(first.url, 'docker-local/multi', 'list', index.bytes, OCI_INDEX)).status, 201);
  const pending = blob(randomBytes(3 << 20));
  const start = await fetch(`${first.url}/v2/docker-local/team/a/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  assert.is((await fetch(`${first.url}${location}`, { method: 'PATCH', body: pending.bytes.subarray(0, 1 << 20) })).status, 202);
  await first.stop();
  await rm(first.dataDir, { recursive: true, force: true });

  const second = await startWharf({ storage });
  try {
    assert.is.not(second.dataDir, first.dataDir);
    for (const [name, image] of images) {
      const manifest = await fetch(`${second.url}/v2/docker-local/${name}/manifests/1`);
      assert.ok(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest), name);
      for (const item of [image.config, ...image.layers]) {
        const response = await fetch(`${second.url}/v2/docker-local/${name}/blobs/${item.digest}`);
        assert.ok(Buffer.from(await response.arrayBuffer()).equals(item.bytes), `${name} ${item.digest}`);
      }
    }
    assert.is((await fetch(`${second.url}/v2/docker-local/multi/manifests/list`, { headers: { Accept: OCI_INDEX } })).headers.get('docker-content-digest'), index.digest);
    const status = await fetch(`${second.url}${location}`);
    assert.is(status.status, 204);
    assert.is(status.headers.get('range'), `0-${(1 << 20) - 1}`);
    const rest = await fetch(`${second.url}${location}?digest=${pending.digest}`, { method: 'PUT', body: pending.bytes.subarray(1 << 20), headers: { 'Content-Range': `${1 << 20}-${pending.bytes.length - 1}` } });
    assert.is(rest.status, 201);
    const pulled = await fetch(`${second.url}/v2/docker-local/team/a/blobs/${pending.digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(pending.bytes));
    const catalog = (await (await fetch(`${second.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.equal(catalog.repositories, ['docker-local/multi', 'docker-local/team/a', 'docker-local/team/b']);
  } finally {
    await second.cleanup();
  }
});

test('users and access tokens live in PostgreSQL: a new node with an empty disk logs them in', async () => {
  const storage = await testStorage('s3-postgres');
  const users = [{ name: 'ci', password: 'ci-password-1' }];
  const permissions = [{ name: 'ci', repositories: ['docker-local'], users: { ci: ['deploy'] } }];
  const first = await startWharf({ storage, auth: {}, users, permissions, audit: () => undefined });
  const image = makeImage();
  assert.is((await pushWith(dockerClient(first.url, { user: 'ci', password: 'ci-password-1' }), 'docker-local/ci/app', image, '1')).status, 201);
  await first.stop();
  await rm(first.dataDir, { recursive: true, force: true });
  // The second node gets no users of its own: it must find ci's in the database.
  const second = await startWharf({ storage, auth: {}, permissions, audit: () => undefined });
  try {
    assert.is(second.initialAdminPassword, null, 'the database has users: no first admin is made');
    const pulled = await dockerClient(second.url, { user: 'ci', password: 'ci-password-1' })('/v2/docker-local/ci/app/manifests/1');
    assert.is(pulled.status, 200);
    assert.is(pulled.headers.get('docker-content-digest'), image.digest);
    const wrong = await fetch(`${second.url}/v2/token?service=wharf`, { headers: { authorization: `Basic ${Buffer.from('ci:not-it').toString('base64')}` } });
    assert.is(wrong.status, 401);
  } finally {
    await second.cleanup();
  }
});

test('two nodes: an image pushed on one is pulled on the other at once, a push whose chunks alternate between them finishes, and a deleted tag is gone at once', async () => {
  const storage = await testStorage('s3-postgres');
  const [a, b] = [await startWharf({ storage }), await startWharf({ storage })];
  try {
    const image = makeImage({ layers: 2 });
    await pushImage(a.url, 'docker-local/team/app', image, '1');
    assert.is((await fetch(`${b.url}/v2/docker-local/team/app/manifests/1`)).headers.get('docker-content-digest'), image.digest);
    for (const item of image.layers) assert.ok(Buffer.from(await (await fetch(`${b.url}/v2/docker-local/team/app/blobs/${item.digest}`)).arrayBuffer()).equals(item.bytes));
    const layer = blob(randomBytes(3 << 20));
    let location = (await fetch(`${a.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    for (const [i, node] of [a, b, a].entries()) {
      const range = { start: i << 20, end: ((i + 1) << 20) - 1 };
      const chunk = await fetch(`${node.url}${location}`, { method: 'PATCH', body: layer.bytes.subarray(range.start, range.end + 1), headers: { 'Content-Range': `${range.start}-${range.end}` } });
      assert.is(chunk.status, 202);
      assert.is(chunk.headers.get('range'), `0-${range.end}`);
      location = chunk.headers.get('location')!;
    }
    assert.is((await fetch(`${b.url}${location}?digest=${layer.digest}`, { method: 'PUT' })).status, 201);
    assert.ok(Buffer.from(await (await fetch(`${a.url}/v2/docker-local/team/app/blobs/${layer.digest}`)).arrayBuffer()).equals(layer.bytes));
    assert.is((await fetch(`${a.url}/v2/docker-local/team/app/manifests/1`, { method: 'DELETE' })).status, 202);
    assert.is((await fetch(`${b.url}/v2/docker-local/team/app/manifests/1`)).status, 404);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('two nodes: a chunk sent to the other node while one is still being received is refused, and the blob is the bytes its digest names', async () => {
  const storage = await testStorage('s3-postgres');
  const [a, b] = [await startWharf({ storage }), await startWharf({ storage })];
  let resume = () => undefined as void;
  try {
    const meant = blob(randomBytes(40 << 20));
    const location = (await fetch(`${a.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    // A's chunk arrives on demand: once A is reading it (and holds the session), the rest waits for `resume`.
    const held = heldChunk(`${a.url}${location}`, meant.bytes);
    resume = held.resume;
    const first = held.response;
    await held.reading;
    const other = randomBytes(meant.bytes.length);
    const second = await fetch(`${b.url}${location}`, { method: 'PATCH', body: other });
    assert.is(second.status, 416, 'B refuses a chunk of the session A is receiving');
    assert.is(await errorCode(second), 'BLOB_UPLOAD_INVALID');
    assert.is(second.headers.get('location'), location, 'with where the upload is, to resume');
    assert.is(second.headers.get('range'), '0-0', 'and what it holds: A\'s chunk is not stored yet');
    resume();
    assert.is((await first).status, 202);
    const done = await fetch(`${b.url}${location}?digest=${meant.digest}`, { method: 'PUT' });
    assert.is(done.status, 201);
    const pulled = await fetch(`${a.url}/v2/docker-local/team/app/blobs/${meant.digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(meant.bytes), 'the blob is the bytes of its digest');
  } finally {
    resume();
    await a.cleanup();
    await b.cleanup();
  }
});

test('two nodes: one starting up while the other finishes an upload (bytes placed, not yet linked) leaves the finish whole and the session ended', async () => {
  const storage = await testStorage('s3-postgres');
  const layer = blob(randomBytes(3 << 20));
  // A stops once the session's bytes are the blob (the session's objects are gone, its row is not), before the link.
  let placed!: () => void;
  const reached = new Promise<void>((resolve) => { placed = resolve; });
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const hooks = { afterPlace: async (digest: string) => { if (digest === layer.digest) { placed(); await released; } } };
  const a = await startWharf({ storage, hooks });
  let b: TestServer | null = null;
  try {
    const location = (await fetch(`${a.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    assert.is((await fetch(`${a.url}${location}`, { method: 'PATCH', body: layer.bytes })).status, 202);
    const finish = fetch(`${a.url}${location}?digest=${layer.digest}`, { method: 'PUT' });
    await reached;
    assert.equal((await s3Keys(storage.blobs as S3Settings)).filter((key) => key.includes('/uploads/')), [], 'the session\'s bytes are gone');
    // B's start-up repair meets the row of a session without bytes.
    b = await startWharf({ storage });
    assert.match(await (await fetch(`${b.url}/metrics`)).text(), /^wharf_uploads_in_progress 0$/m, 'B\'s repair ended the session');
    release();
    const finished = await finish;
    assert.is(finished.status, 201);
    assert.is(finished.headers.get('docker-content-digest'), layer.digest);
    for (const node of [a, b]) {
      const pulled = await fetch(`${node.url}/v2/docker-local/team/app/blobs/${layer.digest}`);
      assert.is(pulled.status, 200);
      assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(layer.bytes), 'the blob is linked whole');
      assert.is((await fetch(`${node.url}${location}`)).status, 404, 'the session is over');
    }
  } finally {
    release();
    await a.cleanup();
    await b?.cleanup();
  }
});

test('workers: 4 on PostgreSQL open 10 connections in all, not a pool of 10 each, however many requests come at once', async () => {
  const url = await postgresDatabase();
  const wharf = await spawnWharf(await tempDir(), {
    config: `workers: 4\nstorage: { metadata: { driver: postgres, url: "${url}" } }\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n`,
  });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const image = makeImage();
    await pushImage(wharf.url, 'docker-local/team/app', image, '1');
    // A connection of its own for each request, so that they spread over the workers.
    const pulls = Array.from({ length: 200 }, async () => {
      const dispatcher = new Agent({ pipelining: 0 });
      const response = await fetch(`${wharf.url}/v2/docker-local/team/app/tags/list`, { dispatcher } as RequestInit);
      await response.arrayBuffer();
      await dispatcher.close();
      return response.status;
    });
    assert.ok((await Promise.all(pulls)).every((status) => status === 200));
    const { rows } = await admin.query<{ count: number }>('SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    assert.ok(rows[0]!.count <= 10, `${rows[0]!.count} connections`);
  } finally {
    await admin.end();
    wharf.child.kill('SIGTERM');
  }
});

test('PostgreSQL restarted under a running server: requests meanwhile get 503 UNAVAILABLE, and it recovers without a restart', async () => {
  const lines: string[] = [];
  const storage = await testStorage('s3-postgres');
  const wharf = await startWharf({ storage, log: (line) => lines.push(line) });
  let restart: (() => Promise<void>) | null = null;
  try {
    const image = makeImage();
    await pushImage(wharf.url, 'docker-local/team/app', image, '1');
    restart = await stopPostgres();
    for (const [method, path] of [['GET', '/v2/docker-local/team/app/manifests/1'], ['GET', '/v2/docker-local/team/app/tags/list'], ['GET', `/v2/docker-local/team/app/blobs/${image.layers[0]!.digest}`], ['POST', '/v2/docker-local/team/app/blobs/uploads/']] as const) {
      const response = await fetch(`${wharf.url}${path}`, { method });
      assert.is(response.status, 503, `${method} ${path}`);
      assert.is(await errorCode(response), 'UNAVAILABLE');
    }
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 503);
    assert.equal((await s3Keys(storage.blobs as S3Settings)).filter((key) => key.includes('/uploads/')), [], 'the upload that could not start left no session marker');
    await restart();
    restart = null;
    const manifest = await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/1`);
    assert.is(manifest.status, 200);
    assert.is(manifest.headers.get('docker-content-digest'), image.digest);
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '2');
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 200);
    assert.is(lines.filter((line) => line.includes('the metadata database is not reachable')).length, 1, lines.join('\n'));
    assert.is(lines.filter((line) => line.includes('the metadata database is reachable again')).length, 1);
    assert.not.ok(lines.some((line) => line.includes('internal error')), lines.join('\n'));
  } finally {
    await restart?.();
    await wharf.cleanup();
  }
});

test('PostgreSQL cut off by a network partition (connections open, nothing answers): requests get 503 UNAVAILABLE within storage.metadata.timeouts, and work again once it is back', async () => {
  const url = new URL(await postgresDatabase());
  const link = await switchable(`http://${url.host}`);
  url.port = String(link.port);
  const lines: string[] = [];
  const metadata = { driver: 'postgres', url: url.href, timeouts: { connect: '1s', response: '1s' } };
  const wharf = await startWharf({ storage: { blobs: await s3Storage(), metadata }, log: (line) => lines.push(line) });
  try {
    const image = makeImage();
    await pushImage(wharf.url, 'docker-local/team/app', image, '1');
    link.mode = 'stalled';
    for (const path of ['/v2/docker-local/team/app/manifests/1', '/v2/docker-local/team/app/tags/list', '/readyz']) {
      // Bounded: without a statement timeout the request waits for TCP to give up.
      const response = await fetch(`${wharf.url}${path}`, { signal: AbortSignal.timeout(30_000) });
      assert.is(response.status, 503, path);
      if (path !== '/readyz') assert.is(await errorCode(response), 'UNAVAILABLE');
    }
    link.mode = 'forward';
    const manifest = await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/1`);
    assert.is(manifest.status, 200);
    assert.is(manifest.headers.get('docker-content-digest'), image.digest);
    assert.is(lines.filter((line) => line.includes('the metadata database is not reachable (no answer within storage.metadata.timeouts)')).length, 1, lines.join('\n'));
    assert.is(lines.filter((line) => line.includes('the metadata database is reachable again')).length, 1, lines.join('\n'));
  } finally {
    link.mode = 'forward';
    await wharf.cleanup();
    await link.close();
  }
});

test('PostgreSQL refusing new connections (too many clients, SQLSTATE 53300): requests get 503 UNAVAILABLE with the SQLSTATE alone, the log has the server\'s words', async () => {
  const url = new URL(await postgresDatabase());
  const admin = new pg.Client({ connectionString: url.href });
  await admin.connect();
  // Superusers pass every connection limit: Wharf connects as a role of its own, which owns the database.
  const role = `wharf_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  await admin.query(`ALTER DATABASE ${url.pathname.slice(1)} OWNER TO ${role}`);
  url.username = role;
  const lines: string[] = [];
  const wharf = await startWharf({ storage: { blobs: await s3Storage(), metadata: { driver: 'postgres', url: url.href } }, log: (line) => lines.push(line) });
  try {
    await pushImage(wharf.url, 'docker-local/team/app', makeImage(), '1');
    // The role's connections are used up (as max_connections would be): Wharf's are cut, a new one is refused.
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    let refused = false;
    // A request may still meet a connection being cut (503 too); bounded.
    for (let attempt = 0; attempt < 20 && !refused; attempt++) {
      const response = await fetch(`${wharf.url}/v2/docker-local/team/app/tags/list`);
      assert.is(response.status, 503);
      const text = await response.text();
      const body = JSON.parse(text) as { errors: { code: string; detail: { reason: string } }[] };
      assert.is(body.errors[0]!.code, 'UNAVAILABLE');
      // The caller learns a code, not the role or database (PostgreSQL's own message names them).
      assert.not.ok(text.includes(role) || text.includes(url.pathname.slice(1)), text);
      assert.match(body.errors[0]!.detail.reason, /^([0-9A-Z]{5}|E[A-Z]+)$/);
      refused = body.errors[0]!.detail.reason === '53300';
    }
    assert.ok(refused, 'a new connection was refused with SQLSTATE 53300');
    // Logged once, in the server's words, for whichever came first: a connection cut (57P01) or the refusal.
    const logged = lines.filter((line) => line.includes('the metadata database is not reachable'));
    assert.is(logged.length, 1, lines.join('\n'));
    assert.match(logged[0]!, /\((terminating connection due to administrator command|too many connections for role "wharf_[0-9a-f]+") \(SQLSTATE (57P01|53300)\)\)/);
  } finally {
    await wharf.cleanup();
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
    await admin.end();
  }
});

test.run();
