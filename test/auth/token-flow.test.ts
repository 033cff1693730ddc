import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { errorCode } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { accessOf, basic, challengeOf, dockerClient, fetchToken, pushWith } from '../helpers/auth.js';

// Docker's token flow against an authenticated Wharf on the path method: the challenge, the token
// endpoint's answers, what tokens carry, and what they allow.

let wharf: TestServer;
let base: string;
let audit = '';
const users = [
  { name: 'ci', password: 'ci-password-1' },
  { name: 'reader', password: 'reader-password' },
  { name: 'dana', password: 'dana-password', groups: ['developers'] },
  { name: 'root', password: 'root-password', admin: true },
];
const root = { user: 'root', password: 'root-password' };
const ci = { user: 'ci', password: 'ci-password-1' };
const reader = { user: 'reader', password: 'reader-password' };
const dana = { user: 'dana', password: 'dana-password' };

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    users,
    audit: (line) => { audit += `${line}\n`; },
    repositories: { 'docker-local': { type: 'local' }, 'open-local': { type: 'local' } },
    permissions: [
      { name: 'team', repositories: ['docker-local'], include: ['team/**'], users: { ci: ['deploy'], reader: ['read'] }, groups: { developers: ['delete'] } },
      { name: 'open', repositories: ['open-local'], anonymous: ['read'], users: { ci: ['deploy'] } },
    ],
  });
  base = wharf.url;
});
test.after(() => wharf.cleanup());

test('first start: admin with a random password, printed once and in a 0600 file; the log says where, not what', async () => {
  let log = '';
  const fresh = await startWharf({ auth: {}, log: (message) => { log += `${message}\n`; } });
  try {
    assert.is(wharf.initialAdminPassword, null, 'a data directory with users gets no admin');
    const password = fresh.initialAdminPassword!;
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    const file = join(fresh.dataDir, 'initial-admin-password');
    assert.is((await readFile(file, 'utf8')).trim(), password);
    assert.is((await stat(file)).mode & 0o777, 0o600);
    assert.match(log, `created user admin with a random password, shown once on standard output and kept in ${file}`);
    assert.not.match(log, password);
    assert.ok((await fetchToken(`${fresh.url}/v2/token`, 'wharf', { credentials: { user: 'admin', password } })).token);
  } finally {
    await fresh.cleanup();
  }
});

test('GET /v2/ without credentials: 401 with the Bearer challenge, although anonymous reads are allowed', async () => {
  const response = await fetch(`${base}/v2/`);
  assert.is(response.status, 401);
  assert.is(await errorCode(response), 'UNAUTHORIZED');
  assert.equal(challengeOf(response), { realm: `${base}/v2/token`, service: 'wharf' });
  const manifest = await fetch(`${base}/v2/open-local/team/app/manifests/1`);
  assert.is(manifest.status, 401);
  assert.is(challengeOf(manifest).scope, 'repository:open-local/team/app:pull');
  const upload = await fetch(`${base}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
  assert.is(challengeOf(upload).scope, 'repository:docker-local/team/app:pull,push');
});

test('login with no scope: a token for good credentials, 401 for bad ones; anonymous gets anonymous grants only', async () => {
  assert.ok((await fetchToken(`${base}/v2/token`, 'wharf', { credentials: ci })).token);
  const bad = await fetch(`${base}/v2/token?service=wharf`, { headers: { authorization: basic('ci', 'wrong') } });
  assert.is(bad.status, 401);
  assert.is(await errorCode(bad), 'UNAUTHORIZED');
  const unknown = await fetch(`${base}/v2/token?service=wharf`, { headers: { authorization: basic('nobody', 'whatever1') } });
  assert.is(unknown.status, 401);
  const anonymous = await fetchToken(`${base}/v2/token`, 'wharf', { scopes: ['repository:open-local/x:pull,push', 'repository:docker-local/team/app:pull'] });
  assert.equal(accessOf(anonymous.token), [{ type: 'repository', name: 'open-local/x', actions: ['pull'] }]);
  const withToken = await fetch(`${base}/v2/`, { headers: { authorization: `Bearer ${anonymous.token}` } });
  assert.is(withToken.status, 200, 'an anonymous token opens /v2/');
});

test('scope escalation: every requested scope answered with only the granted actions', async () => {
  const { token } = await fetchToken(`${base}/v2/token`, 'wharf', {
    credentials: reader,
    scopes: ['repository:docker-local/team/app:pull,push,delete,*', 'repository:docker-local/other/app:pull', 'registry:catalog:*', 'repository:nokey/x:pull', 'thing:x:pull'],
  });
  assert.equal(accessOf(token), [
    { type: 'repository', name: 'docker-local/team/app', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  const pushed = await pushWith(dockerClient(base, reader), 'docker-local/team/app', makeImage(), '1');
  assert.is(pushed.status, 403);
  assert.is(await errorCode(pushed), 'DENIED');
});

test('a read-only user cannot push: DENIED, and nothing is stored', async () => {
  const image = makeImage();
  const client = dockerClient(base, reader);
  const response = await client(`/v2/docker-local/team/ro/blobs/uploads/?digest=${image.layers[0]!.digest}`, { method: 'POST', body: image.layers[0]!.bytes });
  assert.is(response.status, 403);
  assert.is(await errorCode(response), 'DENIED');
  const admin = dockerClient(base, root);
  assert.is((await admin(`/v2/docker-local/team/ro/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })).status, 404, 'not even for an admin');
  assert.match(audit, /who=reader from=127\.0\.0\.1 action=deploy target=docker-local\/team\/ro result=denied/);
});

test('a deployer pushes and pulls; overwriting a tag with another manifest needs delete too', async () => {
  const [first, second] = [makeImage(), makeImage()];
  assert.is((await pushWith(dockerClient(base, ci), 'docker-local/team/app', first, 'stable')).status, 201);
  assert.is((await pushWith(dockerClient(base, ci), 'docker-local/team/app', first, 'stable')).status, 201, 'the same manifest again is no overwrite');
  const overwrite = await pushWith(dockerClient(base, ci), 'docker-local/team/app', second, 'stable');
  assert.is(overwrite.status, 403);
  assert.match(((await overwrite.json()) as { errors: { message: string }[] }).errors[0]!.message, 'may not delete docker-local/team/app');
  const pulled = await dockerClient(base, reader)('/v2/docker-local/team/app/manifests/stable', { headers: { Accept: OCI_MANIFEST } });
  assert.is(pulled.headers.get('docker-content-digest'), first.digest, 'the tag still names the first manifest');
  assert.is((await pushWith(dockerClient(base, dana), 'docker-local/team/app', second, 'stable')).status, 201, 'a group member with delete may overwrite');
  assert.match(audit, /who=ci from=127\.0\.0\.1 action=push target=docker-local\/team\/app:stable result=ok/);
  const deleted = await dockerClient(base, dana)(`/v2/docker-local/team/app/manifests/${second.digest}`, { method: 'DELETE' });
  assert.is(deleted.status, 202);
  assert.match(audit, /who=dana from=127\.0\.0\.1 action=delete target=docker-local\/team\/app@sha256:/);
});

test('a token lacking a scope the caller could get: 401 insufficient_scope; one the caller cannot get: 403', async () => {
  const { token } = await fetchToken(`${base}/v2/token`, 'wharf', { credentials: ci, scopes: ['repository:docker-local/team/app:pull'] });
  const push = await fetch(`${base}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.is(push.status, 401);
  assert.equal(challengeOf(push), { realm: `${base}/v2/token`, service: 'wharf', scope: 'repository:docker-local/team/app:pull,push', error: 'insufficient_scope' });
  const other = await fetch(`${base}/v2/docker-local/private/x/manifests/1`, { headers: { authorization: `Bearer ${token}` } });
  assert.is(other.status, 403);
});

test('Basic credentials on registry requests work on loopback; a wrong password is 401', async () => {
  const ok = await fetch(`${base}/v2/docker-local/team/app/tags/list`, { headers: { authorization: basic('reader', 'reader-password') } });
  assert.is(ok.status, 200);
  const bad = await fetch(`${base}/v2/docker-local/team/app/tags/list`, { headers: { authorization: basic('reader', 'nope-nope') } });
  assert.is(bad.status, 401);
  assert.is(challengeOf(bad).error, 'invalid_token');
});

test('refresh tokens: docker login\'s offline_token, then POST grant_type=refresh_token', async () => {
  const login = await fetchToken(`${base}/v2/token`, 'wharf', { credentials: dana, offline: true });
  assert.ok(login.refresh_token);
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: login.refresh_token!, service: 'wharf', client_id: 'docker', scope: 'repository:docker-local/team/app:pull' });
  const refreshed = await fetch(`${base}/v2/token`, { method: 'POST', body: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.is(refreshed.status, 200);
  const body = await refreshed.json() as { access_token: string };
  assert.equal(accessOf(body.access_token), [{ type: 'repository', name: 'docker-local/team/app', actions: ['pull'] }]);
  assert.is(refreshed.headers.get('cache-control'), 'no-store');
  const password = new URLSearchParams({ grant_type: 'password', username: 'dana', password: 'dana-password', service: 'wharf', access_type: 'offline' });
  const byPassword = await fetch(`${base}/v2/token`, { method: 'POST', body: password, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.ok(((await byPassword.json()) as { refresh_token?: string }).refresh_token);
  const forged = await fetch(`${base}/v2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.access_token }), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.is(forged.status, 401, 'an access token is no refresh token');
});

test('the catalog lists only what the caller may read, with correct pages', async () => {
  const admin = dockerClient(base, root);
  for (const name of ['docker-local/a1/x', 'docker-local/team/p1', 'docker-local/team/p2', 'docker-local/zz/x', 'docker-local/team/p3', 'open-local/o1']) {
    assert.is((await pushWith(admin, name, makeImage({ layers: 1 }), 'v')).status, 201);
  }
  const readerClient = dockerClient(base, reader);
  const all = await (await readerClient('/v2/_catalog')).json() as { repositories: string[] };
  assert.ok(all.repositories.every((name) => name.startsWith('docker-local/team/') || name.startsWith('open-local/')), JSON.stringify(all));
  assert.ok(all.repositories.includes('docker-local/team/p3') && all.repositories.includes('open-local/o1'), JSON.stringify(all));
  const pages: string[][] = [];
  let next: string | null = '/v2/_catalog?n=2';
  while (next) {
    const response = await readerClient(next);
    pages.push(((await response.json()) as { repositories: string[] }).repositories);
    next = /<([^>]+)>/.exec(response.headers.get('link') ?? '')?.[1] ?? null;
  }
  assert.equal(pages.flat(), all.repositories, 'the pages add up to the whole list');
  assert.ok(pages.slice(0, -1).every((page) => page.length === 2), 'every page but the last is full');
  assert.is(pages.at(-1)!.length > 0, true, 'no empty last page');
  const anonymous = await (await dockerClient(base)('/v2/_catalog')).json() as { repositories: string[] };
  assert.equal(anonymous.repositories.filter((name) => !name.startsWith('open-local/')), []);
});

test('a mount from a repository the caller may not read leaks nothing: a plain 202 upload', async () => {
  const admin = dockerClient(base, root);
  const secret = makeImage({ layers: 1 });
  assert.is((await pushWith(admin, 'docker-local/private/img', secret, 'v')).status, 201);
  const client = dockerClient(base, ci);
  const digest = secret.layers[0]!.digest;
  const mounted = await client(`/v2/docker-local/team/mine/blobs/uploads/?mount=${digest}&from=docker-local/private/img`, { method: 'POST' });
  assert.is(mounted.status, 202, 'not mounted');
  assert.is((await client(`/v2/docker-local/team/mine/blobs/${digest}`, { method: 'HEAD' })).status, 404, 'and not linked');
  const fromless = await client(`/v2/docker-local/team/mine/blobs/uploads/?mount=${digest}`, { method: 'POST' });
  assert.is(fromless.status, 202, 'without from, a mount would search images the caller may not read');
  const readable = makeImage({ layers: 1 });
  assert.is((await pushWith(client, 'docker-local/team/source', readable, 'v')).status, 201);
  // As clients do for a mount: one token for the target and the source.
  const { token } = await fetchToken(`${base}/v2/token`, 'wharf', { credentials: ci, scopes: ['repository:docker-local/team/mine:pull,push', 'repository:docker-local/team/source:pull'] });
  const mountPath = `/v2/docker-local/team/mine/blobs/uploads/?mount=${readable.layers[0]!.digest}&from=docker-local/team/source`;
  const allowed = await fetch(`${base}${mountPath}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.is(allowed.status, 201, 'from a readable source it mounts');
  const { token: secretToken } = await fetchToken(`${base}/v2/token`, 'wharf', { credentials: ci, scopes: ['repository:docker-local/team/mine:pull,push', 'repository:docker-local/private/img:pull'] });
  const refused = await fetch(`${base}/v2/docker-local/team/mine/blobs/uploads/?mount=${digest}&from=docker-local/private/img`, { method: 'POST', headers: { authorization: `Bearer ${secretToken}` } });
  assert.is(refused.status, 202, 'asking for the source in the token changes nothing');
});

test('unknown repository keys: NAME_UNKNOWN names only the keys the caller may read in', async () => {
  const response = await dockerClient(base, reader)('/v2/nokey/x/tags/list');
  assert.is(response.status, 403, 'nothing granted there');
  const admin = await dockerClient(base, root)('/v2/nokey/x/tags/list');
  assert.is(admin.status, 404);
  assert.match(await admin.text(), 'docker-local, open-local');
});

test('configuration endpoints: admins only; nothing of it for anonymous callers', async () => {
  for (const path of ['/metrics', '/api/proxy-config/nginx', '/api/setup/docker-local']) {
    const anonymous = await fetch(`${base}${path}`);
    assert.is(anonymous.status, 401, path);
    assert.not.match(await anonymous.text(), 'docker-local');
  }
  assert.is((await fetch(`${base}/metrics`, { headers: { authorization: basic('ci', 'ci-password-1') } })).status, 403);
  assert.is((await fetch(`${base}/metrics`, { headers: { authorization: basic('root', 'root-password') } })).status, 200);
  assert.is((await fetch(`${base}/api/setup/docker-local`, { headers: { authorization: basic('reader', 'reader-password') } })).status, 200);
});

test('permissions swapped at runtime take effect at once', async () => {
  const client = dockerClient(base, reader);
  assert.is((await client('/v2/docker-local/team/app/tags/list')).status, 200);
  wharf.updatePermissions([]);
  assert.is((await client('/v2/docker-local/team/app/tags/list')).status, 403);
  wharf.updatePermissions([{ name: 'team', repositories: ['docker-local'], include: ['team/**'], users: { ci: ['deploy'], reader: ['read'] }, groups: { developers: ['delete'] } },
    { name: 'open', repositories: ['open-local'], anonymous: ['read'], users: { ci: ['deploy'] } }]);
  assert.is((await client('/v2/docker-local/team/app/tags/list')).status, 200);
});

test('the audit trail names logins with who and where, and holds no secret', () => {
  assert.match(audit, /audit: who=ci from=127\.0\.0\.1 action=login result=ok/);
  assert.match(audit, /audit: who=ci from=127\.0\.0\.1 action=login result=failed/);
  for (const secret of ['ci-password-1', 'reader-password', 'dana-password', 'root-password']) assert.not.match(audit, secret);
});

test.run();
