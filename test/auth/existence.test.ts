import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withHostEntries } from '../helpers/hosts.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { basic, challengeOf } from '../helpers/auth.js';

// Whether a repository key exists, and what kind of repository it is, is told only to callers
// authorized for what they asked of that key: every other caller gets the same answer for a key
// that exists and for one that does not, on every route and access method.

let wharf: TestServer;
let bound: string;
let port: string;
const domain = 'exist.test';
const ci = { authorization: basic('ci', 'ci-password') };
const root = { authorization: basic('root', 'root-password') };

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    audit: () => undefined,
    baseDomain: domain,
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'secret-local' }],
    users: [{ name: 'ci', password: 'ci-password' }, { name: 'root', password: 'root-password', admin: true }],
    repositories: {
      'docker-local': { type: 'local' },
      'secret-local': { type: 'local' },
      docker: { type: 'virtual', repositories: ['docker-local', 'secret-local'], defaultDeploymentRepo: 'docker-local' },
      hub: { type: 'remote', url: 'http://127.0.0.1:9' },
    },
    permissions: [
      { name: 'read', repositories: ['docker-local'], users: { ci: ['read'] } },
      { name: 'cache', repositories: ['hub'], users: { ci: ['deploy'] } },
    ],
  });
  port = new URL(wharf.url).port;
  bound = wharf.urls[1]!;
});
test.after(() => wharf.cleanup());

/** Status and error code: what tells one answer from another. */
async function answer(response: Response): Promise<string> {
  const text = await response.text();
  const code = text.startsWith('{') ? (JSON.parse(text) as { errors?: { code: string }[] }).errors?.[0]?.code : undefined;
  return `${response.status} ${code ?? text.slice(0, 40)}`;
}

test('DELETE /artifactory: challenged without credentials and denied without the right, whatever the key; the kind only after authorization', async () => {
  const del = (key: string, headers: Record<string, string> = {}) => fetch(`${wharf.url}/artifactory/${key}/team/app/1`, { method: 'DELETE', headers });
  for (const key of ['nope', 'docker-local', 'secret-local', 'docker']) {
    const anonymous = await del(key);
    assert.is(anonymous.status, 401, `${key}: challenged`);
    assert.is(challengeOf(anonymous).scope, `repository:${key}/team/app:delete`);
    assert.is(await answer(await del(key, ci)), '403 DENIED', `${key}: ci may not delete there`);
  }
  assert.is(await answer(await del('nope', root)), '404 NAME_UNKNOWN', 'an admin learns that the key does not exist');
  const virtual = await del('docker', root);
  assert.is(virtual.status, 405);
  assert.match(await virtual.text(), 'it is a virtual repository');
});

test('a push to a remote repository names only the repositories the caller may read', async () => {
  const refused = await fetch(`${wharf.url}/v2/hub/team/app/blobs/uploads/`, { method: 'POST', headers: ci });
  assert.is(refused.status, 405);
  const { message } = ((await refused.json()) as { errors: { message: string }[] }).errors[0]!;
  assert.is(message, 'cannot push blobs to hub: it is a remote repository; push to a local repository (docker-local)');
});

test('subdomains: a host naming no repository answers as one the caller may not use; an admin learns it is unknown', async () => {
  await withHostEntries([`secret-local.${domain}`, `nope.${domain}`], async () => {
    const at = (host: string, headers: Record<string, string>) => fetch(`http://${host}.${domain}:${port}/v2/team/app/manifests/1`, { headers });
    assert.is(await answer(await at('nope', ci)), await answer(await at('secret-local', ci)));
    assert.is(await answer(await at('nope', ci)), '403 DENIED');
    assert.is((await at('nope', {})).status, 401);
    const unknown = await at('nope', root);
    assert.is(unknown.status, 404);
    assert.match(await unknown.text(), `no repository for host nope.${domain}; this registry serves docker-local.${domain}, secret-local.${domain}, docker.${domain}, hub.${domain}`);
    const catalog = (host: string) => fetch(`http://${host}.${domain}:${port}/v2/_catalog`, { headers: ci });
    assert.is(await answer(await catalog('nope')), await answer(await catalog('secret-local')));
  });
});

test("a repository's catalog by prefix answers alike for an unknown key and one the caller reads nothing in", async () => {
  const catalog = (key: string) => fetch(`${wharf.url}/api/docker/${key}/v2/_catalog`, { headers: ci });
  assert.is(await answer(await catalog('nope')), '200 {"repositories":[]}');
  assert.is(await answer(await catalog('secret-local')), '200 {"repositories":[]}');
  assert.is(await answer(await fetch(`${wharf.url}/api/docker/nope/v2/_catalog`, { headers: root })), '404 NAME_UNKNOWN');
});

test('a port binding does not name its repository to a caller who asks it for another', async () => {
  const other = await fetch(`${bound}/api/docker/docker-local/v2/team/app/tags/list`, { headers: ci });
  assert.is(other.status, 404);
  const text = await other.text();
  assert.not.match(text, 'secret-local');
  assert.match(text, 'serves one repository only, not docker-local');
});

test('the token endpoint, /api/setup and /api/docker/<key>/v2/auth answer alike for unknown keys and unreadable ones', async () => {
  const token = async (path: string, scope: string) => {
    const response = await fetch(`${wharf.url}${path}?service=${domain}&scope=${scope}`, { headers: ci });
    assert.is(response.status, 200);
    return ((await response.json()) as { token: string }).token.split('.')[1];
  };
  const grants = (payload: string | undefined) => (JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { access: unknown[] }).access;
  assert.equal(grants(await token('/v2/token', 'repository:nope/app:pull')), []);
  assert.equal(grants(await token('/v2/token', 'repository:secret-local/app:pull')), []);
  assert.equal(grants(await token('/api/docker/nope/v2/token', 'repository:app:pull')), []);
  assert.equal(grants(await token('/api/docker/secret-local/v2/token', 'repository:app:pull')), []);
  for (const headers of [{}, ci]) {
    const setup = async (key: string) => answer(await fetch(`${wharf.url}/api/setup/${key}`, { headers }));
    assert.is(await setup('nope'), await setup('secret-local'));
    const auth = async (key: string) => answer(await fetch(`${wharf.url}/api/docker/${key}/v2/auth`, { headers }));
    assert.is(await auth('nope'), await auth('secret-local'));
  }
});

test.run();
