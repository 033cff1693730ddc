import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { SignJWT, importPKCS8 } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { signingKeyFile } from '../../src/auth/keys.js';
import { makeImage } from '../helpers/images.js';
import { logCollector } from '../helpers/logs.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { basic, challengeOf, dockerClient, fetchToken, pushWith } from '../helpers/auth.js';

// Malformed and hostile input to the authentication layer: Authorization headers, JWTs, token
// requests and Host headers. Each gets the right status and the spec's error JSON, never a 500,
// and the log keeps no secret of it.

let wharf: TestServer;
let base: string;
const log = logCollector();
let good = '';
const target = '/v2/docker-local/team/app/tags/list';

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    accessLog: log.write,
    log: log.write,
    users: [{ name: 'ci', password: 'ci-password-1' }],
    permissions: [{ name: 'team', repositories: ['docker-local'], users: { ci: ['deploy'] } }],
  });
  base = wharf.url;
  assert.is((await pushWith(dockerClient(base, { user: 'ci', password: 'ci-password-1' }), 'docker-local/team/app', makeImage({ layers: 1 }), 'v1')).status, 201);
  good = (await fetchToken(`${base}/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' }, scopes: ['repository:docker-local/team/app:pull'] })).token;
});
test.after(() => wharf.cleanup());

const b64 = (text: string) => Buffer.from(text).toString('base64');
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** JWTs signed with Wharf's own key but with something wrong inside. */
async function signed(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'ES256' }): Promise<string> {
  const key = await importPKCS8(await readFile(join(wharf.dataDir, 'certs', signingKeyFile), 'utf8'), 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: 'wharf', aud: 'wharf', sub: 'ci', iat: now, exp: now + 300, jti: randomUUID(), access: [{ type: 'repository', name: 'docker-local/team/app', actions: ['pull'] }], ...claims })
    .setProtectedHeader(header as { alg: string }).sign(key);
}

interface Case {
  name: string;
  authorization: () => Promise<string> | string;
  status: number;
}

const cases: Case[] = [
  { name: 'Bearer with no token', authorization: () => 'Bearer', status: 401 },
  { name: 'Bearer and a space', authorization: () => 'Bearer ', status: 401 },
  { name: 'Bearer garbage', authorization: () => 'Bearer abc', status: 401 },
  { name: 'Bearer with two tokens', authorization: () => `Bearer ${good} ${good}`, status: 401 },
  { name: 'Bearer a.b.c', authorization: () => 'Bearer a.b.c', status: 401 },
  { name: 'Bearer with a quote', authorization: () => 'Bearer "x"', status: 401 },
  { name: 'Basic with nothing', authorization: () => 'Basic', status: 401 },
  { name: 'Basic, not base64', authorization: () => 'Basic !!!', status: 401 },
  { name: 'Basic without a colon', authorization: () => `Basic ${b64('ci')}`, status: 401 },
  { name: 'Basic with an empty user', authorization: () => `Basic ${b64(':ci-password-1')}`, status: 401 },
  { name: 'Basic with a NUL', authorization: () => `Basic ${b64('ci\u0000:ci-password-1')}`, status: 401 },
  { name: 'Basic with a wrong password', authorization: () => basic('ci', 'ci-password-2'), status: 401 },
  { name: 'Basic for an unknown user', authorization: () => basic('mallory', 'ci-password-1'), status: 401 },
  { name: 'Digest scheme', authorization: () => 'Digest username="ci", realm="x"', status: 401 },
  { name: 'a 10 KB header', authorization: () => `Bearer ${'a'.repeat(10_000)}`, status: 401 },
  { name: 'alg none', authorization: () => `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${good.split('.')[1]}.`, status: 401 },
  { name: 'payload modified (push added)', authorization: () => { const [h, p, s] = good.split('.'); const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>; return `Bearer ${h}.${b64url({ ...claims, access: [{ type: 'repository', name: 'docker-local/team/app', actions: ['pull', 'push'] }] })}.${s}`; }, status: 401 },
  { name: 'signature cut off', authorization: () => `Bearer ${good.split('.').slice(0, 2).join('.')}.`, status: 401 },
  { name: 'signed by another key', authorization: async () => `Bearer ${await new SignJWT(JSON.parse(Buffer.from(good.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>).setProtectedHeader({ alg: 'ES256' }).sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)}`, status: 401 },
  { name: 'HS256 keyed with the public key (algorithm confusion)', authorization: async () => { const pub = Buffer.from(await readFile(join(wharf.dataDir, 'certs', signingKeyFile))); return `Bearer ${await new SignJWT({ sub: 'ci', aud: 'wharf', iss: 'wharf', exp: 9_999_999_999, jti: 'x', access: [] }).setProtectedHeader({ alg: 'HS256' }).sign(pub)}`; }, status: 401 },
  { name: 'our key, another audience', authorization: async () => `Bearer ${await signed({ aud: 'other-service' })}`, status: 401 },
  { name: 'our key, another issuer', authorization: async () => `Bearer ${await signed({ iss: 'someone' })}`, status: 401 },
  { name: 'our key, expired', authorization: async () => `Bearer ${await signed({ exp: Math.floor(Date.now() / 1000) - 10 })}`, status: 401 },
  { name: 'our key, not valid yet', authorization: async () => `Bearer ${await signed({ nbf: Math.floor(Date.now() / 1000) + 3600 })}`, status: 401 },
  { name: 'our key, no expiry', authorization: async () => `Bearer ${await signed({ exp: undefined })}`, status: 401 },
  { name: 'our key, an unknown user', authorization: async () => `Bearer ${await signed({ sub: 'mallory' })}`, status: 401 },
  { name: 'our key, a refresh token used as access token', authorization: async () => `Bearer ${await signed({ use: 'refresh', pwc: 0 })}`, status: 401 },
  { name: 'our key, access not a list', authorization: async () => `Bearer ${await signed({ access: 'all' })}`, status: 401 },
  { name: 'our key, an access token id that does not exist', authorization: async () => `Bearer ${await signed({ tid: '0123456789abcdef' })}`, status: 401 },
  { name: 'our key, anonymous subject claiming a token id', authorization: async () => `Bearer ${await signed({ sub: '', tid: '0123456789abcdef' })}`, status: 401 },
  { name: 'an access token of the right shape, unknown', authorization: () => `Bearer wharf_0123456789abcdef_${'A'.repeat(43)}`, status: 401 },
  { name: 'a valid token for another image', authorization: async () => `Bearer ${await signed({ access: [{ type: 'repository', name: 'docker-local/team/other', actions: ['pull'] }] })}`, status: 401 },
  { name: 'a valid token, scheme in lower case', authorization: () => `bearer ${good}`, status: 200 },
  { name: 'a valid token', authorization: () => `Bearer ${good}`, status: 200 },
];

test(`${cases.length} malformed or hostile Authorization headers: the right status and error JSON, never a 500`, async () => {
  assert.ok(cases.length >= 30);
  for (const item of cases) {
    const response = await fetch(`${base}${target}`, { headers: { authorization: await item.authorization() } });
    assert.is(response.status, item.status, item.name);
    if (item.status === 401) {
      const body = (await response.json()) as { errors: { code: string; message: string }[] };
      assert.is(body.errors[0]!.code, 'UNAUTHORIZED', item.name);
      assert.ok(challengeOf(response).realm, item.name);
    } else {
      await response.arrayBuffer();
    }
  }
});

interface TokenCase {
  name: string;
  method?: string;
  query?: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
  code?: string;
}

const tokenCases: TokenCase[] = [
  { name: 'a scope with no name or actions', query: 'scope=repository', status: 400, code: 'UNSUPPORTED' },
  { name: 'a scope without actions', query: 'scope=repository:docker-local/team/app', status: 400, code: 'UNSUPPORTED' },
  { name: 'a scope of 2000 characters', query: `scope=repository:${'a'.repeat(2000)}:pull`, status: 400, code: 'UNSUPPORTED' },
  { name: 'a scope with upper-case actions', query: 'scope=repository:docker-local/a:PULL', status: 400, code: 'UNSUPPORTED' },
  { name: 'another service', query: 'service=registry.docker.io', status: 400, code: 'UNSUPPORTED' },
  { name: 'bad Basic at the token endpoint', headers: { authorization: 'Basic !!!' }, status: 401, code: 'UNAUTHORIZED' },
  { name: 'a JWT is no login', headers: { authorization: 'Bearer x.y.z' }, status: 401, code: 'UNAUTHORIZED' },
  { name: 'POST without a form', method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' }, status: 400, code: 'UNSUPPORTED' },
  { name: 'POST with an unknown grant', method: 'POST', body: 'grant_type=client_credentials', status: 400, code: 'UNSUPPORTED' },
  { name: 'POST password grant without a password', method: 'POST', body: 'grant_type=password&username=ci', status: 400, code: 'UNSUPPORTED' },
  { name: 'POST with a garbage refresh token', method: 'POST', body: 'grant_type=refresh_token&refresh_token=abc', status: 401, code: 'UNAUTHORIZED' },
  { name: 'POST with a huge body', method: 'POST', body: `grant_type=password&x=${'a'.repeat(70_000)}`, status: 413, code: 'SIZE_INVALID' },
  { name: 'PUT to the token endpoint', method: 'PUT', status: 405, code: 'UNSUPPORTED' },
];

test(`${tokenCases.length} malformed token requests: the right status and error JSON`, async () => {
  for (const item of tokenCases) {
    const response = await fetch(`${base}/v2/token${item.query ? `?${item.query}` : ''}`, {
      method: item.method ?? 'GET',
      ...(item.body !== undefined ? { body: item.body } : {}),
      headers: { ...(item.method === 'POST' && !item.headers ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}), ...item.headers },
    });
    assert.is(response.status, item.status, item.name);
    assert.is(((await response.json()) as { errors: { code: string }[] }).errors[0]!.code, item.code, item.name);
  }
  const odd = await fetchToken(`${base}/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' }, scopes: ['repository:../../etc/passwd:pull', 'repository:docker-local/team/app:pull,pull,fly', 'repository(plugin):docker-local/team/app:push'] });
  assert.equal(JSON.parse(Buffer.from(odd.token.split('.')[1]!, 'base64url').toString()).access, [{ type: 'repository', name: 'docker-local/team/app', actions: ['pull', 'push'] }]);
  const unknownKey = await fetchToken(`${base}/api/docker/nokey/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' }, scopes: ['repository:x:pull'] });
  assert.equal(JSON.parse(Buffer.from(unknownKey.token.split('.')[1]!, 'base64url').toString()).access, []);
});

test('a repository key outside the key grammar (a line break, a quote): a client error with the error JSON, never a 500', async () => {
  const requests = [
    ['GET', '/v2/a%0d%0ab/team/app/tags/list'],
    ['GET', '/api/docker/a%0d%0ab/v2/team/app/tags/list'],
    ['PUT', '/v2/a%22b/team/app/manifests/v1'],
    ['DELETE', '/artifactory/a%0d%0ab/team/app/v1'],
  ];
  for (const [method, path] of requests) {
    for (const authorization of [undefined, basic('ci', 'ci-password-1')]) {
      const response = await fetch(`${base}${path}`, { method, headers: authorization ? { authorization } : {} });
      const who = `${method} ${path} ${authorization ? 'as ci' : 'anonymous'}`;
      assert.ok(response.status === 400 || response.status === 401, `${who}: ${response.status}`);
      assert.ok(((await response.json()) as { errors: unknown[] }).errors.length === 1, who);
      assert.not.match(response.headers.get('www-authenticate') ?? '', /a.b/, `${who}: the key is not echoed into a header`);
    }
  }
});

/** A raw HTTP/1.1 request with a Host header of our choosing (fetch will not send such). */
function rawGet(path: string, host: string | null, headers: Record<string, string> = {}): Promise<{ status: number; challenge: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET', setHost: false, headers: { ...(host === null ? {} : { Host: host }), ...headers } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate'] ?? '') });
    });
    req.on('error', reject);
    req.end();
  });
}

test('realms: built from a well-formed Host only; X-Forwarded-* from untrusted peers ignored', async () => {
  const port = new URL(base).port;
  assert.match((await rawGet('/v2/', `registry.example:${port}`)).challenge, `realm="http://registry.example:${port}/v2/token"`);
  for (const host of ['evil"host', 'a b', 'x/y', '']) {
    const { status, challenge } = await rawGet('/v2/', host);
    assert.ok(status === 401 || status === 400, `${host}: ${status}`);
    if (status === 401) assert.match(challenge, `realm="http://127.0.0.1:${port}/v2/token"`, `${JSON.stringify(host)} is never echoed`);
  }
  assert.is((await rawGet('/v2/', null)).status, 400, 'HTTP/1.1 without Host is refused before Wharf sees it');
  const forwarded = await rawGet('/v2/', `127.0.0.1:${port}`, { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' });
  assert.match(forwarded.challenge, `realm="http://127.0.0.1:${port}/v2/token"`);
});

test('nothing secret in the log: no password, token, Authorization header or token query parameter', async () => {
  await fetch(`${base}/v2/token?service=wharf&refresh_token=${good}&password=hunter2-secret`);
  // The request's access line is written after its response is over: wait for it, not a turn.
  await log.waitFor('/v2/token?service=wharf&refresh_token=***&password=***');
  await wharf.stop();
  const text = log.lines.join('\n');
  for (const secret of ['ci-password-1', 'hunter2-secret', good.split('.')[2]!, 'Authorization', 'authorization']) assert.not.match(text, secret);
});

test.run();
