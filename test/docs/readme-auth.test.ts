import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { fetchToken } from '../helpers/auth.js';
import { cliConfig, runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// README, "Access control": tokens are ES256 JWTs signed with a key made on first start in
// certsDir/token-signing.key (mode 0600); nodes that do not share that key refuse each other's tokens.

const users = [{ name: 'ci', password: 'ci-password-1' }];
const permissions = [{ name: 'all', repositories: ['*'], users: { ci: ['read'], leaver: ['read'] } }];
const started: TestServer[] = [];
test.after(async () => { for (const server of started) await server.cleanup(); });

async function node(dataDir: string, options: { users?: typeof users; storage?: Record<string, unknown>; now?: () => number; auth?: Record<string, unknown> } = {}): Promise<TestServer> {
  const server = await startWharf({ dataDir, auth: {}, permissions, audit: () => undefined, ...options });
  started.push(server);
  return server;
}

const keyFile = (server: TestServer) => join(server.dataDir, 'certs', 'token-signing.key');
const base = async (server: TestServer, token: string) => (await fetch(`${server.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status;
const login = async (server: TestServer) => (await fetchToken(`${server.url}/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' } })).token;
const refresh = async (server: TestServer, refreshToken: string) => (await fetch(`${server.url}/v2/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'wharf', scope: 'repository:docker-local/app:pull' }),
})).status;

/** Runs wharf commands on a node's database; each must succeed. */
async function cliOf(server: TestServer): Promise<(args: string[], input?: string) => Promise<string>> {
  const config = await cliConfig(server);
  return async (args, input) => {
    const result = await runCli([...args, '--config', config], process.env, input);
    assert.is(result.code, 0, result.stderr);
    return result.stdout;
  };
}

test('the signing key is made on first start in certsDir/token-signing.key (0600), and signs ES256 tokens', async () => {
  const dir = await tempDir();
  assert.is(await stat(join(dir, 'certs', 'token-signing.key')).catch(() => null), null, 'no key before the first start');
  const a = await node(dir, { users });
  const file = await stat(keyFile(a));
  assert.is(file.mode & 0o777, 0o600);
  const token = await login(a);
  assert.is(decodeProtectedHeader(token).alg, 'ES256');
  const { payload } = await jwtVerify(token, createPublicKey(await readFile(keyFile(a), 'utf8')), { issuer: 'wharf', audience: 'wharf' });
  assert.is(payload.sub, 'ci');
  assert.ok(typeof payload.jti === 'string' && typeof payload.exp === 'number' && typeof payload.added === 'number' && Array.isArray(payload.access));
  const before = await readFile(keyFile(a), 'utf8');
  await a.stop();
  const again = await node(dir, { storage: a.storage });
  assert.is(await readFile(keyFile(again), 'utf8'), before, 'a restart keeps the key');
  assert.is(await base(again, token), 200, 'so tokens issued before the restart still work');
});

test('two nodes that know the same user: each refuses the tokens the other issued until they share the key', async () => {
  const a = await node(await tempDir(), { users });
  // On PostgreSQL + S3 the nodes share the database (and so the user); on SQLite each has its own.
  const sharedDatabase = 'metadata' in a.storage;
  const b = await node(await tempDir(), { storage: a.storage, ...(sharedDatabase ? {} : { users }) });
  assert.is(await base(b, await login(b)), 200, 'the user is known to B');
  const token = await login(a);
  assert.is(await base(a, token), 200);
  assert.is(await base(b, token), 401, 'another key: refused');
  await b.stop();
  await copyFile(keyFile(a), keyFile(b));
  const shared = await node(b.dataDir, { storage: b.storage });
  assert.is(await base(shared, token), 200, 'the same key: accepted');
});

test('wharf user remove revokes the user\'s access tokens: a new user of the same name does not inherit them', async () => {
  const server = await node(await tempDir(), { users });
  const cli = await cliOf(server);
  const withToken = async (secret: string) => (await fetch(`${server.url}/v2/docker-local/app/tags/list`, { headers: { authorization: `Bearer ${secret}` } })).status;
  await cli(['user', 'add', 'leaver', '--password-stdin'], 'leaver-password');
  const secret = (await cli(['token', 'create', '--user', 'leaver'])).trim();
  const id = secret.slice(6, 22);
  await server.accountsLoaded();
  assert.is(await withToken(secret), 404, 'the new token works');
  await cli(['user', 'remove', 'leaver']);
  await cli(['user', 'add', 'leaver', '--password-stdin'], 'newcomer-password');
  await server.accountsLoaded();
  assert.is((await fetch(`${server.url}/v2/token`, { headers: { authorization: `Basic ${Buffer.from('leaver:newcomer-password').toString('base64')}` } })).status, 200, 'the user of the same name is known');
  assert.is(await withToken(secret), 401, 'the old token died with its user');
  assert.match(await cli(['token', 'list']), new RegExp(`^${id}\\s+leaver\\s.*\\srevoked\\s`, 'm'));
});

test('a user removed and added again is someone new: the bearer and refresh tokens of the one removed are refused, the new one\'s work', async () => {
  const a = await node(await tempDir(), { users });
  const cli = await cliOf(a);
  // On PostgreSQL + S3 a second node shares the database and the key, and remembers the old token verified.
  const nodes = 'metadata' in a.storage ? [a, await node(await sharingKey(a), { storage: a.storage })] : [a];
  const leaver = (server: TestServer, password: string) => fetchToken(`${server.url}/v2/token`, 'wharf', { credentials: { user: 'leaver', password }, offline: true });
  await cli(['user', 'add', 'leaver', '--password-stdin'], 'leaver-password');
  // A login reloads the node's snapshot of the users: after it, the node knows what the CLI did.
  const old = await leaver(a, 'leaver-password');
  for (const server of nodes) {
    await leaver(server, 'leaver-password');
    assert.is(await base(server, old.token), 200, 'the bearer token works (and is remembered verified)');
  }
  await cli(['user', 'remove', 'leaver']);
  await cli(['user', 'add', 'leaver', '--password-stdin'], 'newcomer-password');
  for (const server of nodes) {
    const fresh = await leaver(server, 'newcomer-password');
    assert.is(await base(server, fresh.token), 200, "the new user's bearer token");
    assert.is(await base(server, old.token), 401, "the removed user's bearer token");
    assert.is(await refresh(server, old.refresh_token!), 401, "the removed user's refresh token");
    assert.is(await refresh(server, fresh.refresh_token!), 200, "the new user's refresh token");
  }
});

test('a token issued for longer than the lifetime now configured is refused: lowering a lifetime shortens the tokens already issued', async () => {
  const longer = await node(await tempDir(), { users, auth: { tokenLifetime: '1h', refreshTokenLifetime: '30d' } });
  // The same key and users: only the configured lifetimes differ (5m and 7d, the defaults).
  const current = await node(await sharingKey(longer), { users });
  const issued = await fetchToken(`${longer.url}/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' }, offline: true });
  assert.is(await base(longer, issued.token), 200);
  assert.is(await refresh(longer, issued.refresh_token!), 200);
  assert.is(await base(current, issued.token), 401, 'a bearer token issued for 1h, where tokens live 5m');
  assert.is(await refresh(current, issued.refresh_token!), 401, 'a refresh token issued for 30d, where they live 7d');
  assert.is(await base(current, await login(current)), 200);
});

/** A new data directory holding the server's signing key. */
async function sharingKey(server: TestServer): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'certs'));
  await copyFile(keyFile(server), join(dir, 'certs', 'token-signing.key'));
  return dir;
}

/** A node on the test's clock, and an access token of ci's made there that expires after `expires`. */
async function expiringToken(expires: string): Promise<{ server: TestServer; secret: string; advance: (ms: number) => void }> {
  let now = Date.now();
  const server = await node(await tempDir(), { users, now: () => now });
  const created = await runCli(['token', 'create', '--user', 'ci', '--expires', expires, '--config', await cliConfig(server)]);
  assert.is(created.code, 0, created.stderr);
  return { server, secret: created.stdout.trim(), advance: (ms) => { now += ms; } };
}

test('wharf token create --expires: the access token is refused once its time is up', async () => {
  const { server, secret, advance } = await expiringToken('90d');
  const withToken = async () => (await fetch(`${server.url}/v2/docker-local/app/tags/list`, { headers: { authorization: `Bearer ${secret}` } })).status;
  await server.accountsLoaded();
  assert.is(await withToken(), 404, 'the token works');
  advance(89 * 86_400_000);
  assert.is(await withToken(), 404, 'day 89: still valid');
  advance(2 * 86_400_000);
  assert.is(await withToken(), 401, 'day 91: expired');
});

test('an expired access token also ends the bearer and refresh tokens docker login got with it', async () => {
  const { server, secret, advance } = await expiringToken('1d');
  await server.accountsLoaded();
  const answer = await fetchToken(`${server.url}/v2/token`, 'wharf', { credentials: { user: 'ci', password: secret }, offline: true });
  const refreshToken = answer.refresh_token!;
  assert.is(await refresh(server, refreshToken), 200, 'while the access token lives, its refresh token works');
  advance(86_400_000 + 60_000);
  assert.is((await fetch(`${server.url}/v2/`, { headers: { authorization: `Bearer ${secret}` } })).status, 401, 'the access token has expired');
  assert.is(await refresh(server, refreshToken), 401, 'and so has what it logged in to');
});

test('wharf user add --admin: an administrator, who may do everything (here: /metrics, which others may not)', async () => {
  const server = await node(await tempDir(), { users });
  const config = await cliConfig(server);
  const added = await runCli(['user', 'add', 'boss', '--admin', '--password-stdin', '--config', config], process.env, 'boss-password');
  assert.is(added.code, 0, added.stderr);
  const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
  await server.accountsLoaded();
  assert.is((await fetch(`${server.url}/metrics`, { headers: basic('boss', 'boss-password') })).status, 200, 'the new admin reads /metrics');
  assert.is((await fetch(`${server.url}/metrics`, { headers: basic('ci', 'ci-password-1') })).status, 403, 'a user who is not an admin');
  const push = await fetch(`${server.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST', headers: basic('boss', 'boss-password') });
  assert.is(push.status, 202, 'and pushes where no permission target names the admin');
  const list = await runCli(['user', 'list', '--config', config]);
  assert.match(list.stdout, /^boss\s+yes\s/m);
});

test.run();
