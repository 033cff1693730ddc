import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { dockerClient, fetchToken, pushWith } from '../helpers/auth.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// A bearer token carries the repository it was issued for, not just the image name the client
// used: where the same name ("app") means another repository — another port binding, subdomain or
// prefix — it grants nothing, even to a user who may read there (with a token for there).

let wharf: TestServer;
const ci = { user: 'ci', password: 'ci-password-1' };
const host = 'reg-binding.test';
let port: string;
let portA: string;
let portB: string;

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    baseDomain: host,
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'repo-a' }, { address: '127.0.0.1', port: 0, repository: 'repo-b' }],
    repositories: { 'repo-a': { type: 'local' }, 'repo-b': { type: 'local' } },
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'root', password: 'root-password', admin: true }],
    permissions: [{ name: 'both', repositories: ['repo-a', 'repo-b'], users: { ci: ['read'] } }],
  });
  [port, portA, portB] = wharf.urls.map((url) => new URL(url).port) as [string, string, string];
  const image = makeImage({ layers: 1 });
  for (const repo of ['repo-a', 'repo-b']) assert.is((await pushWith(dockerClient(wharf.url, { user: 'root', password: 'root-password' }), `${repo}/app`, image, 'v1')).status, 201);
});
test.after(() => wharf.cleanup());

/** Tags of `app` at `base` with a token from `realm`: A's token on A, A's token on B, B's own token on B. */
async function statuses(realmA: string, baseA: string, realmB: string, baseB: string, name: string): Promise<number[]> {
  const tags = async (base: string, token: string) => (await fetch(`${base}/v2/${name}/tags/list`, { headers: { authorization: `Bearer ${token}` } })).status;
  const { token: tokenA } = await fetchToken(realmA, host, { credentials: ci, scopes: [`repository:${name}:pull`] });
  const { token: tokenB } = await fetchToken(realmB, host, { credentials: ci, scopes: [`repository:${name}:pull`] });
  return [await tags(baseA, tokenA), await tags(baseB, tokenA), await tags(baseB, tokenB)];
}

test('port binding: a token issued on A\'s port is refused on B\'s for the same name, though the user reads B', async () => {
  const a = `http://127.0.0.1:${portA}`;
  const b = `http://127.0.0.1:${portB}`;
  assert.equal(await statuses(`${a}/v2/token`, a, `${b}/v2/token`, b, 'app'), [200, 401, 200]);
});

test('subdomain: a token issued on repo-a.<domain> is refused on repo-b.<domain>, though the user reads B', async () => {
  await withHostEntries([`repo-a.${host}`, `repo-b.${host}`], async () => {
    const a = `http://repo-a.${host}:${port}`;
    const b = `http://repo-b.${host}:${port}`;
    assert.equal(await statuses(`${a}/v2/token`, a, `${b}/v2/token`, b, 'app'), [200, 401, 200]);
  });
});

test('path: a token for repo-a/app is refused for repo-b/app, and one from /api/docker/repo-a for /api/docker/repo-b', async () => {
  const tags = async (path: string, token: string) => (await fetch(`${wharf.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status;
  const { token } = await fetchToken(`${wharf.url}/v2/token`, host, { credentials: ci, scopes: ['repository:repo-a/app:pull'] });
  assert.is(await tags('/v2/repo-a/app/tags/list', token), 200);
  assert.is(await tags('/v2/repo-b/app/tags/list', token), 401);
  const prefixA = `${wharf.url}/api/docker/repo-a`;
  const prefixB = `${wharf.url}/api/docker/repo-b`;
  assert.equal(await statuses(`${prefixA}/v2/token`, prefixA, `${prefixB}/v2/token`, prefixB, 'app'), [200, 401, 200]);
});

test.run();
