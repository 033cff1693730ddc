import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { cliConfig, runCli, startWharf } from '../helpers/server.js';

// Basic credentials on registry requests are checked with scrypt once, then remembered while the
// client keeps using them (at least once a minute): a steady client never waits for a scrypt
// again. What ends the memory is the stored hash: a changed password or a removed user is
// refused as soon as the server's account snapshot has it.

test('Basic in steady use runs no scrypt past the first minute; a changed password and a removed user are refused at once', async () => {
  let now = 1_800_000_000_000;
  let hashed = 0;
  const wharf = await startWharf({
    auth: {},
    now: () => now,
    users: [{ name: 'ci', password: 'first-password' }],
    loginHooks: { hashing: () => { hashed++; } },
  });
  const config = await cliConfig(wharf);
  const cli = async (args: string[], input?: string) => assert.is((await runCli([...args, '--config', config], process.env, input)).code, 0);
  const v2 = async (password: string) => (await fetch(`${wharf.url}/v2/`, { headers: { authorization: basic('ci', password) } })).status;
  // A token-endpoint login reads the database, and so loads the server's snapshot of it at once.
  const login = async (password: string) => (await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: { authorization: basic('ci', password) } })).status;
  try {
    assert.is(await v2('first-password'), 200);
    assert.is(hashed, 1, 'the first request hashes the password');
    for (let i = 0; i < 5; i++) {
      now += 50_000;
      assert.is(await v2('first-password'), 200);
    }
    assert.is(hashed, 1, 'a request every 50 s for 250 s: no scrypt after the first, none on the request path');
    now += 60_000;
    assert.is(await v2('first-password'), 200);
    assert.is(hashed, 2, 'unused for a minute: forgotten, checked again');

    await cli(['user', 'passwd', 'ci', '--password-stdin'], 'second-password');
    assert.is(await login('first-password'), 401, 'the token endpoint refuses the old password at once');
    assert.is(await v2('first-password'), 401, 'so does Basic on registry requests, remembered a moment ago');
    assert.is(await v2('second-password'), 200);
    const afterChange = hashed;
    now += 50_000;
    assert.is(await v2('second-password'), 200);
    assert.is(hashed, afterChange, 'the new password is remembered in turn');

    await cli(['user', 'remove', 'ci']);
    assert.is(await login('second-password'), 401, 'a removed user cannot log in');
    assert.is(await v2('second-password'), 401, 'nor use the password remembered for them');
  } finally {
    await wharf.cleanup();
  }
});

test('Basic spelt otherwise (the scheme in other cases, base64 without its padding) is remembered too: one scrypt and one login line for every read', async () => {
  let hashed = 0;
  const audit: string[] = [];
  const wharf = await startWharf({
    auth: {},
    users: [{ name: 'ci', password: 'remembered-pw' }],
    audit: (line) => audit.push(line),
    loginHooks: { hashing: () => { hashed++; } },
  });
  const encoded = basic('ci', 'remembered-pw').slice('Basic '.length);
  assert.ok(encoded.endsWith('=='), 'credentials whose base64 is padded');
  try {
    for (const authorization of [`Basic ${encoded}`, `basic ${encoded}`, `BASIC ${encoded}`, `Basic ${encoded.slice(0, -2)}`]) {
      for (let i = 0; i < 3; i++) assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization } })).status, 200, authorization);
    }
    assert.is(hashed, 1);
    assert.is(audit.filter((line) => line.includes('action=login')).length, 1, 'reads with remembered credentials are no logins');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
