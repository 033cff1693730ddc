import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { cliConfig, runCli, startWharf } from '../helpers/server.js';

// An access token sent as a Basic password (`curl -u ci:wharf_…`, a CI secret in a client that
// only speaks Basic) is checked on every request as its Bearer form is: no login attempt and no
// audit line per read. A token that does not check out still goes through the login, which
// throttles and audits the failure; a revoked one is refused once the server's snapshot has it.

/** A server where ci may read docker-local (five failed logins of a name from one address are the limit), its audit lines, and the wharf command on its database (each run must succeed). */
async function start() {
  const audit: string[] = [];
  const wharf = await startWharf({
    auth: { throttle: { perUser: 5, perAddress: 100, window: '1h' } },
    audit: (line) => audit.push(line),
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'root', password: 'root-password', admin: true }],
    permissions: [{ name: 'read', repositories: ['docker-local'], users: { ci: ['read'] } }],
  });
  const config = await cliConfig(wharf);
  const cli = async (args: string[]) => {
    const result = await runCli([...args, '--config', config]);
    assert.is(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  return { wharf, audit, cli };
}

test('an access token as a Basic password: no login per request; a wrong or revoked one is refused and audited', async () => {
  const { wharf, audit, cli } = await start();
  const read = async (user: string, password: string) => (await fetch(`${wharf.url}/v2/docker-local/app/tags/list`, { headers: { authorization: basic(user, password) } })).status;
  const logins = (result: string) => audit.filter((line) => line.includes('action=login') && line.includes(`result=${result}`)).length;
  try {
    const token = await cli(['token', 'create', '--user', 'ci']);
    // A token-endpoint login reads the database, and so loads the server's snapshot of it.
    assert.is((await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: { authorization: basic('ci', token) } })).status, 200);
    assert.is(logins('ok'), 1, 'the token endpoint is a login');
    for (let i = 0; i < 5; i++) assert.is(await read('ci', token), 404, 'known and allowed to read: the image just does not exist');
    for (let i = 0; i < 3; i++) assert.is((await fetch(`${wharf.url}/v2/docker-local/app/tags/list`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
    assert.is(logins('ok'), 1, 'reads with the token as a Basic password or a Bearer credential are no logins');

    const wrongSecret = `${token.slice(0, 23)}${token[23] === 'A' ? 'B' : 'A'}${token.slice(24)}`;
    assert.is(await read('ci', wrongSecret), 401, 'a wrong secret');
    assert.is(await read('root', token), 401, 'only with its owner\'s name');
    assert.is(logins('failed'), 2, 'each refusal is audited as a failed login');

    await cli(['token', 'revoke', token.slice(6, 22)]);
    await wharf.accountsLoaded();
    assert.is(await read('ci', token), 401, 'the revoked token is refused');
    assert.is(logins('failed'), 3);
  } finally {
    await wharf.cleanup();
  }
});

test('an access token as a Bearer credential is the same login as its Basic form: audited and throttled alike on registry requests, the token endpoint and the API', async () => {
  const { wharf, audit, cli } = await start();
  const logins = () => audit.filter((line) => line.includes('action=login')).map((line) => line.replace(/ from=\S+/, ''));
  try {
    const token = await cli(['token', 'create', '--user', 'ci']);
    const id = token.slice(6, 22);
    const bearer = { authorization: `Bearer ${token}` };
    // Not in the server's snapshot yet: the token endpoint reads the database, as for Basic.
    assert.is((await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: bearer })).status, 200);
    assert.is((await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: { authorization: basic('ci', token) } })).status, 200);
    assert.equal(logins(), [`audit: who=ci/token:${id} action=login result=ok`, `audit: who=ci/token:${id} action=login result=ok`], 'a login at the token endpoint, in either form');
    assert.is((await fetch(`${wharf.url}/v2/docker-local/app/tags/list`, { headers: bearer })).status, 404);
    assert.is(logins().length, 2, 'a good token sent again on a registry request is no login');

    await cli(['token', 'revoke', id]);
    await wharf.accountsLoaded();
    audit.length = 0;
    const refused = [
      await fetch(`${wharf.url}/v2/docker-local/app/tags/list`, { headers: bearer }),
      await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: bearer }),
      await fetch(`${wharf.url}/api/repositories`, { headers: bearer }),
      await fetch(`${wharf.url}/v2/docker-local/app/tags/list`, { headers: { authorization: basic('ci', token) } }),
    ];
    assert.equal(refused.map((response) => response.status), [401, 401, 401, 401]);
    assert.match(await refused[0]!.text(), 'the access token is not valid');
    assert.equal(logins(), Array(4).fill('audit: who=ci action=login result=failed'), 'each refusal is a failed login of its owner, as Basic ci:wharf_… is');
    const unknown = `wharf_${'0'.repeat(16)}_${token.slice(23)}`;
    assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization: `Bearer ${unknown}` } })).status, 401);
    assert.is(logins()[4], `audit: who=token:${'0'.repeat(16)} action=login result=failed`, 'a token id nobody owns is named by its id');

    // Counted with the Basic failure of ci from this address: five are the limit.
    assert.is((await fetch(`${wharf.url}/v2/`, { headers: bearer })).status, 401);
    const throttled = await fetch(`${wharf.url}/v2/`, { headers: bearer });
    assert.is(throttled.status, 429);
    assert.ok(throttled.headers.get('retry-after'));
    assert.not.match(await throttled.text(), /\bci\b/, 'the refusal does not name the owner, which the caller did not send');
    assert.is(logins().at(-1), 'audit: who=ci action=login result=throttled');
    assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization: basic('ci', token) } })).status, 429, 'and so is its Basic form');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
