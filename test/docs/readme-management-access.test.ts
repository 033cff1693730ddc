import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// README, "Who may call the management API": the promotion, info, storage, search and repository
// routes name their repositories themselves, so they answer alike on every listener and host
// (the path listener, one bound to docker-team, the docker-team subdomain): what a caller may do
// is decided by who they are, never by the way they came in.

const baseDomain = 'reg-docs.test';
let wharf: TestServer;
const root = basic('root', 'root-password-1');
const alice = basic('alice', 'alice-password-1');

interface Answer { status: number; challenge: string | null; body: string }

/** One request on `url` with the Host header given (a subdomain without an /etc/hosts entry). */
function send(url: string, path: string, options: { host?: string; authorization?: string; method?: string; body?: string } = {}): Promise<Answer> {
  const target = new URL(path, url);
  const headers: Record<string, string> = { host: options.host ?? target.host };
  if (options.authorization) headers.authorization = options.authorization;
  if (options.body) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(target, { method: options.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, challenge: (res.headers['www-authenticate'] as string | undefined) ?? null, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    audit: () => {},
    baseDomain,
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'docker-team' }],
    repositories: { 'docker-local': { type: 'local' }, 'docker-team': { type: 'local' }, 'docker-prod': { type: 'local' }, 'docker-secret': { type: 'local' } },
    users: [{ name: 'root', password: 'root-password-1', admin: true }, { name: 'alice', password: 'alice-password-1' }],
    permissions: [{ name: 'team', repositories: ['docker-local', 'docker-prod'], include: ['team/**'], users: { alice: ['read'] } }],
  });
  await pushImage(wharf.url, 'docker-local/team/web', makeImage({ layers: 1 }), '1.0', { authorization: root });
  await pushImage(wharf.url, 'docker-secret/team/web', makeImage({ layers: 1 }), '1.0', { authorization: root });
});
test.after(() => wharf.cleanup());

/** The ways in: the path listener, the listener bound to docker-team, and docker-team's subdomain. */
const waysIn = () => [
  { name: 'path listener', url: wharf.urls[0]!, host: undefined },
  { name: 'port binding', url: wharf.urls[1]!, host: undefined },
  { name: 'subdomain', url: wharf.urls[0]!, host: `docker-team.${baseDomain}` },
];

const routes = [
  { name: 'info', path: '/api/docker/docker-local/info/team/web/1.0' },
  { name: 'storage', path: '/api/storage/docker-local/team/web/1.0/manifest.json?properties' },
  { name: 'search', path: '/api/search/docker?image=team/web' },
  { name: 'repositories', path: '/api/repositories' },
  { name: 'promote', path: '/api/docker/docker-local/v2/promote', method: 'POST', body: JSON.stringify({ targetRepo: 'docker-prod', dockerRepository: 'team/web', tag: '1.0', targetTag: 'copied', copy: true }) },
];

test('every management route answers alike on the path listener, a port binding and a subdomain', async () => {
  for (const route of routes) {
    for (const who of [undefined, alice]) {
      const answers = await Promise.all(waysIn().map((way) => send(way.url, route.path, { host: way.host, authorization: who, method: route.method, body: route.body })));
      const [first, ...others] = answers.map(({ status, challenge, body }) => ({ status, challenge, body: body.replace(/"(lastPulled|lastDownloaded)":"[^"]*"/g, '').replace(/https?:\/\/[^/"]+/g, 'ORIGIN') }));
      others.forEach((other, i) => assert.equal(other, first, `${route.name} as ${who ? 'alice' : 'anonymous'} on the ${waysIn()[i + 1]!.name}`));
    }
  }
});

test('anonymous callers get a Basic challenge naming the service; alice reads but may not promote; keys she cannot read are unknown', async () => {
  for (const way of waysIn()) {
    const at = (path: string, options: { authorization?: string; method?: string; body?: string } = {}) => send(way.url, path, { host: way.host, ...options });
    const anonymous = await at(routes[0]!.path);
    assert.is(anonymous.status, 401, way.name);
    assert.is(anonymous.challenge, `Basic realm="${baseDomain}"`, way.name);
    const info = await at(routes[0]!.path, { authorization: alice });
    assert.is(info.status, 200, `${way.name}: ${info.body}`);
    assert.is((JSON.parse(info.body) as { repository: string }).repository, 'docker-local');
    const found = JSON.parse((await at(routes[2]!.path, { authorization: alice })).body) as { results: { repository: string }[] };
    assert.ok(found.results.length > 0 && found.results.every((r) => r.repository !== 'docker-secret'), `${way.name}: docker-secret is not found for alice`);
    const denied = await at(routes[4]!.path, { authorization: alice, method: 'POST', body: routes[4]!.body });
    assert.is(denied.status, 403, way.name);
    assert.match(denied.body, '"DENIED"');
    const secret = await at('/api/docker/docker-secret/info/team/web/1.0', { authorization: alice });
    assert.is(secret.status, 404, way.name);
    assert.match(secret.body, '"NAME_UNKNOWN"');
    assert.not.match(secret.body, 'docker-team', `${way.name}: only keys alice may read are named`);
  }
});

test('an admin promotes through every way in, bound listener and subdomain included', async () => {
  for (const [i, way] of waysIn().entries()) {
    const body = JSON.stringify({ targetRepo: 'docker-prod', dockerRepository: 'team/web', tag: '1.0', targetTag: `via-${i}`, copy: true });
    const answer = await send(way.url, '/api/docker/docker-local/v2/promote', { host: way.host, authorization: root, method: 'POST', body });
    assert.is(answer.status, 200, `${way.name}: ${answer.body}`);
    assert.match(answer.body, `docker-prod/team/web:via-${i}`);
  }
  const tags = await (await fetch(`${wharf.url}/v2/docker-prod/team/web/tags/list`, { headers: { authorization: root } })).json() as { tags: string[] };
  assert.ok(['via-0', 'via-1', 'via-2'].every((tag) => tags.tags.includes(tag)), JSON.stringify(tags));
});

test.run();
