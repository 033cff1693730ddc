import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic, fetchToken } from '../helpers/auth.js';
import { freePort } from '../helpers/ports.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// What an error may tell an anonymous caller when access control is on: its code and the
// standard message, never an upstream, a repository key or a path; a signed-in caller with the
// right to fetch learns that the upstream failed, but only an administrator learns its address.

let wharf: TestServer;
let upstream: string;

test.before(async () => {
  upstream = `127.0.0.1:${await freePort()}`; // nothing listens there
  wharf = await startWharf({
    auth: {},
    repositories: { hub: { type: 'remote', url: `http://${upstream}` }, 'secret-local': { type: 'local' } },
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'boss', password: 'boss-password-1', admin: true }],
    permissions: [{ name: 'open-mirror', repositories: ['hub'], users: { ci: ['read', 'deploy'] }, anonymous: ['read', 'deploy'] }],
  });
});
test.after(() => wharf.cleanup());

interface ErrorBody { errors: { code: string; message: string; detail?: unknown }[] }

test('an upstream failure: anonymous callers get the code and its standard message only', async () => {
  const path = `${wharf.url}/v2/hub/team/never/manifests/1.0`;
  // As Docker clients do it: an anonymous token, then the request with it.
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { scopes: ['repository:hub/team/never:pull'] });
  const anonymous = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  assert.ok(anonymous.status >= 500, `status ${anonymous.status}`);
  const text = await anonymous.text();
  assert.not.match(text, upstream);
  assert.not.match(text, 'http://');
  assert.not.match(text, /upstream/i);
  const body = JSON.parse(text) as ErrorBody;
  assert.is(body.errors.length, 1);
  assert.is(body.errors[0]!.detail ?? null, null, 'no detail');
  const signedIn = await fetch(path, { headers: { authorization: basic('ci', 'ci-password-1') } });
  assert.is(signedIn.status, anonymous.status);
  const told = await signedIn.text();
  assert.not.match(told, upstream, 'no upstream address for a caller who is not an administrator');
  assert.not.match(told, 'http://');
  assert.match(told, 'the upstream failed', 'but the caller learns where the failure was');
  const admin = await fetch(path, { headers: { authorization: basic('boss', 'boss-password-1') } });
  assert.match(await admin.text(), upstream, 'an administrator learns which upstream failed');
});

test('unknown and unreadable repositories: anonymous callers are challenged alike, and no key is named', async () => {
  for (const key of ['secret-local', 'no-such-key']) {
    const response = await fetch(`${wharf.url}/v2/${key}/app/tags/list`);
    assert.is(response.status, 401, key);
    const text = await response.text();
    for (const named of ['secret-local', 'hub']) assert.not.match(text.replace(`repository:${key}/app:pull`, ''), named);
  }
});

test('the catalog and the base endpoint name nothing beyond what anonymous callers may read', async () => {
  const catalog = await fetch(`${wharf.url}/v2/_catalog`);
  assert.not.match(await catalog.text(), 'secret-local');
});

test.run();
