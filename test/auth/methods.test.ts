import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { errorCode } from '../helpers/registry.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';
import { basic, challengeOf, dockerClient, fetchToken, pushWith } from '../helpers/auth.js';

// Every access method reaches a repository with the same rights, and tokens live exactly as long
// as their user, their access token and the clock allow; CLI changes apply without a restart.

let wharf: TestServer;
let now = Date.now();
const ci = { user: 'ci', password: 'ci-password-1' };
const host = 'reg-auth.test';
let portA: string;
let portB: string;
let port: string;

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    baseDomain: host,
    now: () => now,
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'repo-a' }, { address: '127.0.0.1', port: 0, repository: 'repo-b' }],
    repositories: { 'repo-a': { type: 'local' }, 'repo-b': { type: 'local' } },
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'root', password: 'root-password', admin: true }],
    permissions: [{ name: 'a', repositories: ['repo-a'], users: { ci: ['delete'] } }],
  });
  [port, portA, portB] = wharf.urls.map((url) => new URL(url).port) as [string, string, string];
  const image = makeImage({ layers: 1 });
  for (const repo of ['repo-a', 'repo-b']) assert.is((await pushWith(dockerClient(wharf.url, { user: 'root', password: 'root-password' }), `${repo}/app`, image, 'v1')).status, 201);
});
test.after(() => wharf.cleanup());

async function tagsWith(url: string, token: string): Promise<number> {
  return (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status;
}

test('a token for repository A is refused on B, by path, by subdomain and by port binding', async () => {
  // Path: names carry the key.
  const pathChallenge = challengeOf(await fetch(`${wharf.url}/v2/repo-a/app/tags/list`));
  assert.equal(pathChallenge, { realm: `${wharf.url}/v2/token`, service: host, scope: 'repository:repo-a/app:pull' });
  const { token: pathToken } = await fetchToken(pathChallenge.realm, host, { credentials: ci, scopes: [pathChallenge.scope!] });
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, pathToken), 200);
  assert.is(await tagsWith(`${wharf.url}/v2/repo-b/app/tags/list`, pathToken), 403);
  // Artifactory's prefix: its own realm, names inside the key.
  const prefixChallenge = challengeOf(await fetch(`${wharf.url}/api/docker/repo-b/v2/app/tags/list`));
  assert.equal(prefixChallenge, { realm: `${wharf.url}/api/docker/repo-b/v2/token`, service: host, scope: 'repository:app:pull' });
  const { token: prefixToken } = await fetchToken(`${wharf.url}/api/docker/repo-a/v2/token`, host, { credentials: ci, scopes: ['repository:app:pull'] });
  assert.is(await tagsWith(`${wharf.url}/api/docker/repo-a/v2/app/tags/list`, prefixToken), 200);
  assert.is(await tagsWith(`${wharf.url}/api/docker/repo-b/v2/app/tags/list`, prefixToken), 403);
  // Port binding: the listener's repository, names without the key.
  const portChallenge = challengeOf(await fetch(`http://127.0.0.1:${portA}/v2/app/tags/list`));
  assert.equal(portChallenge, { realm: `http://127.0.0.1:${portA}/v2/token`, service: host, scope: 'repository:app:pull' });
  const { token: portToken } = await fetchToken(portChallenge.realm, host, { credentials: ci, scopes: ['repository:app:pull'] });
  assert.is(await tagsWith(`http://127.0.0.1:${portA}/v2/app/tags/list`, portToken), 200);
  assert.is(await tagsWith(`http://127.0.0.1:${portB}/v2/app/tags/list`, portToken), 403);
  const { token: portBToken } = await fetchToken(`http://127.0.0.1:${portB}/v2/token`, host, { credentials: ci, scopes: ['repository:app:pull,push,delete'] });
  assert.is(await tagsWith(`http://127.0.0.1:${portB}/v2/app/tags/list`, portBToken), 403, 'asking on B\'s own realm grants nothing there');
  // Subdomain: the Host selects the repository, and the realm follows the Host.
  await withHostEntries([`repo-a.${host}`, `repo-b.${host}`, `repo-c.${host}`], async () => {
    const a = `http://repo-a.${host}:${port}`;
    const subChallenge = challengeOf(await fetch(`${a}/v2/app/tags/list`));
    assert.equal(subChallenge, { realm: `${a}/v2/token`, service: host, scope: 'repository:app:pull' });
    const { token } = await fetchToken(subChallenge.realm, host, { credentials: ci, scopes: [subChallenge.scope!] });
    assert.is(await tagsWith(`${a}/v2/app/tags/list`, token), 200);
    assert.is(await tagsWith(`http://repo-b.${host}:${port}/v2/app/tags/list`, token), 403);
    // A host naming no repository: nothing for anonymous callers, and only what a user may read.
    assert.is((await fetch(`http://repo-c.${host}:${port}/v2/`)).status, 401);
    // /v2/ answers there as anywhere (clients probe it first); the first request naming an image says what is served.
    assert.is((await fetch(`http://repo-c.${host}:${port}/v2/`, { headers: { authorization: basic('ci', 'ci-password-1') } })).status, 200);
    // A user without rights there is denied as on B, which exists: whether a key exists is no answer to them.
    const unknown = await fetch(`http://repo-c.${host}:${port}/v2/app/tags/list`, { headers: { authorization: basic('ci', 'ci-password-1') } });
    assert.is(unknown.status, 403);
    assert.is((await fetch(`http://repo-b.${host}:${port}/v2/app/tags/list`, { headers: { authorization: basic('ci', 'ci-password-1') } })).status, 403);
    const admin = await fetch(`http://repo-c.${host}:${port}/v2/app/tags/list`, { headers: { authorization: basic('root', 'root-password') } });
    assert.is(admin.status, 404);
    assert.is(((await admin.json()) as { errors: { message: string }[] }).errors[0]!.message, `no repository for host repo-c.${host}; this registry serves repo-a.${host}, repo-b.${host}`);
  });
});

test('a token expires with the clock', async () => {
  const { token, expires_in } = await fetchToken(`${wharf.url}/v2/token`, host, { credentials: ci, scopes: ['repository:repo-a/app:pull'] });
  assert.is(expires_in, 300);
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, token), 200);
  now += 299_000;
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, token), 200);
  now += 2_000;
  const expired = await fetch(`${wharf.url}/v2/repo-a/app/tags/list`, { headers: { authorization: `Bearer ${token}` } });
  assert.is(expired.status, 401);
  assert.is(challengeOf(expired).error, 'invalid_token');
});

async function cli(args: string[], input?: string) {
  const config = await cliConfig(wharf, { 'repo-a': { type: 'local' }, 'repo-b': { type: 'local' } });
  const result = await runCli([...args, '--config', config], process.env, input);
  assert.is(result.code, 0, result.stderr);
  return result.stdout;
}

test('CLI changes apply to the running server: new users log in, removed users\' tokens stop working', async () => {
  await cli(['user', 'add', 'newbie', '--password-stdin'], 'newbie-password');
  const { token } = await fetchToken(`${wharf.url}/v2/token`, host, { credentials: { user: 'newbie', password: 'newbie-password' } });
  assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  const { refresh_token: refreshToken } = await fetchToken(`${wharf.url}/v2/token`, host, { credentials: { user: 'newbie', password: 'newbie-password' }, offline: true });
  const refresh = () => fetch(`${wharf.url}/v2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken!, service: host }), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.is((await refresh()).status, 200);
  await cli(['user', 'passwd', 'newbie', '--password-stdin'], 'another-password');
  const old = await fetch(`${wharf.url}/v2/token`, { headers: { authorization: basic('newbie', 'newbie-password') } });
  assert.is(old.status, 401, 'the old password is refused at once (logins read the database)');
  assert.is((await refresh()).status, 401, 'a refresh token from before the new password no longer works');
  await cli(['user', 'remove', 'newbie']);
  await wharf.accountsLoaded();
  assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status, 401, 'a removed user\'s token is refused');
});

test('access tokens: a docker login password and a Bearer/Basic credential, limited by scope, dead once revoked', async () => {
  const created = await cli(['token', 'create', '--user', 'ci', '--scope', 'repository:repo-a/app:pull', '--description', 'test']);
  const secret = created.trim();
  const id = secret.slice(6, 22);
  const { token: jwt } = await fetchToken(`${wharf.url}/v2/token`, host, { credentials: { user: 'ci', password: secret }, scopes: ['repository:repo-a/app:pull,push'] });
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, jwt), 200);
  const push = await fetch(`${wharf.url}/v2/repo-a/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
  assert.is(push.status, 403, 'the owner may push, the token may not');
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, secret), 200, 'as a Bearer credential');
  assert.is((await fetch(`${wharf.url}/v2/repo-a/app/tags/list`, { headers: { authorization: basic('ci', secret) } })).status, 200, 'as Basic');
  assert.is((await fetch(`${wharf.url}/v2/repo-a/app/tags/list`, { headers: { authorization: basic('root', secret) } })).status, 401, 'only with its owner\'s name');
  wharf.updatePermissions([]);
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, secret), 403, 'never more than the owner may do now');
  wharf.updatePermissions([{ name: 'a', repositories: ['repo-a'], users: { ci: ['delete'] } }]);
  await cli(['token', 'revoke', id]);
  await wharf.accountsLoaded();
  assert.is((await fetch(`${wharf.url}/v2/repo-a/app/tags/list`, { headers: { authorization: `Bearer ${secret}` } })).status, 401, 'the revoked token is refused');
  assert.is(await tagsWith(`${wharf.url}/v2/repo-a/app/tags/list`, jwt), 401, 'and so is every JWT issued for it');
  const login = await fetch(`${wharf.url}/v2/token`, { headers: { authorization: basic('ci', secret) } });
  assert.is(login.status, 401);
  assert.is(await errorCode(login), 'UNAUTHORIZED');
  // Last uses are written in batches (every ~10 s) and at shutdown: stop the server rather than wait.
  await wharf.stop();
  assert.match(await cli(['token', 'list']), /\d{4}-\d\d-\d\dT[\d:]+Z\s+revoked/, 'the last use, written at shutdown');
});

test.run();
