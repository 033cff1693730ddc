import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { accessOf, basic, fetchToken } from '../helpers/auth.js';
import { freePort } from '../helpers/ports.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';

// A registry bearer JWT names registry scopes only, and may travel over plain HTTP where passwords
// may not: an admin's JWT carries no administrator rights to the management API, nor sees the
// configuration admins are shown. The admin's password and access token still do.

const upstream = 'mirror-source.internal.example:5000';
let wharf: TestServer;
let closed: string; // a remote's upstream where nothing listens: its errors name the address
const root = { user: 'root', password: 'root-password' };
const password = { authorization: basic(root.user, root.password) };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The admin's JWT for `scopes` (none: "access":[]). */
const jwt = async (scopes: string[] = []) => bearer((await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials: root, scopes })).token);

test.before(async () => {
  closed = `127.0.0.1:${await freePort()}`;
  wharf = await startWharf({
    auth: {},
    users: [{ name: 'root', password: 'root-password', admin: true }], audit: () => undefined, log: () => undefined,
    repositories: { 'docker-local': { type: 'local' }, 'docker-remote': { type: 'remote', url: `https://${upstream}` }, 'docker-closed': { type: 'remote', url: `http://${closed}` } },
  });
});
test.after(() => wharf.cleanup());

/** The admin-only endpoints, each with a check that its answer is the admin's. */
const adminOnly: { method: string; path: string; shows: RegExp }[] = [
  { method: 'POST', path: '/api/system/storage/gc?dryRun=true', shows: /"dryRun":true/ },
  { method: 'GET', path: '/metrics', shows: /wharf_/ },
  { method: 'GET', path: '/api/proxy-config/nginx', shows: /server_name|location/ },
];

test('an admin\'s JWT, without scopes or with every scope, is denied every admin-only endpoint; the password is not', async () => {
  const none = await jwt();
  assert.equal(accessOf(none.authorization.slice(7)), []);
  const all = await jwt(['repository:docker-local/team/app:*', 'registry:catalog:*']);
  for (const { method, path, shows } of adminOnly) {
    for (const headers of [none, all]) {
      const refused = await fetch(`${wharf.url}${path}`, { method, headers });
      assert.is(refused.status, 403, `${method} ${path} with a JWT`);
      const text = await refused.text();
      assert.match(text, '"DENIED"');
      assert.match(text, 'bearer token', 'says why an admin is refused');
    }
    const allowed = await fetch(`${wharf.url}${path}`, { method, headers: password });
    assert.is(allowed.status, 200, `${method} ${path} with the password`);
    assert.match(await allowed.text(), shows);
  }
});

test('an admin\'s access token (not a JWT) keeps its rights to the admin-only endpoints', async () => {
  const config = await cliConfig(wharf, { 'docker-local': { type: 'local' } });
  const created = await runCli(['token', 'create', '--user', 'root', '--description', 'ops', '--config', config]);
  assert.is(created.code, 0, created.stderr);
  const secret = created.stdout.trim();
  await wharf.accountsLoaded();
  for (const { method, path } of adminOnly) {
    assert.is((await fetch(`${wharf.url}${path}`, { method, headers: bearer(secret) })).status, 200, `${method} ${path} with the access token`);
  }
});

test('Set Me Up with an admin\'s JWT names no upstream, as for any reader', async () => {
  const forPassword = await (await fetch(`${wharf.url}/api/setup/docker-remote`, { headers: password })).text();
  assert.match(forPassword, `As a mirror of ${upstream}:`);
  const response = await fetch(`${wharf.url}/api/setup/docker-remote`, { headers: await jwt() });
  assert.is(response.status, 200);
  const text = await response.text();
  assert.not.match(text, 'mirror-source');
  assert.match(text, '/etc/containerd/certs.d/<upstream>/hosts.toml');
});

test('errors that name configuration conceal it from an admin\'s JWT, as from any signed-in caller', async () => {
  const path = `${wharf.url}/v2/docker-closed/team/app/manifests/1`;
  const forPassword = await fetch(path, { headers: password });
  assert.ok(forPassword.status >= 500, `${forPassword.status}`);
  assert.match(await forPassword.text(), closed, 'the password\'s answer names the upstream');
  const forJwt = await fetch(path, { headers: await jwt(['repository:docker-closed/team/app:pull']) });
  assert.is(forJwt.status, forPassword.status);
  const text = await forJwt.text();
  assert.not.match(text, closed);
  assert.match(text, 'an administrator can find which and why in the server log');
});

test.run();
