import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliConfig, cliPath, runCli, startWharf, tempDir, testStorage } from '../helpers/server.js';
import { basic, challengeOf, heldLogins } from '../helpers/auth.js';
import { errorCode } from '../helpers/registry.js';
import { terminate } from '../helpers/children.js';

// Password guessing is throttled, Basic credentials travel only where they are safe, and a
// listener that would carry them in clear text is named at start.

test('failed logins are throttled per user (from an address) and per address: 429 with Retry-After, until the window passes', async () => {
  let now = 1_800_000_000_000;
  let audit = '';
  const wharf = await startWharf({
    auth: { throttle: { perUser: 3, perAddress: 6, window: '1m' } },
    now: () => now,
    audit: (line) => { audit += `${line}\n`; },
    users: [{ name: 'victim', password: 'right-password' }, { name: 'other', password: 'other-password' }],
  });
  try {
    const login = (user: string, password: string) => fetch(`${wharf.url}/v2/token?service=wharf`, { headers: { authorization: basic(user, password) } });
    for (let i = 0; i < 3; i++) {
      assert.is((await login('victim', `guess-${i}`)).status, 401);
      now += 1000;
    }
    const throttled = await login('victim', 'right-password');
    assert.is(throttled.status, 429, 'even the right password waits');
    assert.is(throttled.headers.get('retry-after'), '57');
    assert.is(await errorCode(throttled), 'TOOMANYREQUESTS');
    const direct = await fetch(`${wharf.url}/v2/`, { headers: { authorization: basic('victim', 'right-password') } });
    assert.is(direct.status, 429, 'Basic on registry requests too');
    assert.is((await login('other', 'other-password')).status, 200, 'another user from the same address is not locked out yet');
    for (let i = 0; i < 3; i++) assert.is((await login(`nobody-${i}`, 'guess')).status, 401);
    const address = await login('other', 'other-password');
    assert.is(address.status, 429, 'the address reached its own limit across user names');
    assert.match(audit, 'who=victim from=127.0.0.1 action=login result=throttled');
    now += 60_000;
    assert.is((await login('victim', 'right-password')).status, 200, 'after the window');
  } finally {
    await wharf.cleanup();
  }
});

test('parallel wrong passwords: no more than the limit reach the password hash, and the user still logs in from elsewhere', async () => {
  const guesses = 10;
  // Every guess either waits in the hook (its attempt counted, its hash not begun) or was refused:
  // once all have done one or the other, the held ones are released together.
  const held = heldLogins(guesses);
  let audit = '';
  const wharf = await startWharf({
    auth: { throttle: { perUser: 3, perAddress: 100, window: '1m' } },
    trustedProxies: ['127.0.0.1'],
    audit: (line) => { audit += `${line}\n`; },
    users: [{ name: 'victim', password: 'right-password' }],
    loginHooks: { reserved: held.reserved },
  });
  try {
    const login = (password: string, from: string) => fetch(`${wharf.url}/v2/token?service=wharf`, {
      headers: { authorization: basic('victim', password), 'X-Forwarded-For': from, 'X-Forwarded-Proto': 'https' },
    });
    const statuses = await held.send((i) => login(`guess-${i}`, '203.0.113.66'));
    assert.is(held.hashed, 3, 'three attempts reached the hash');
    assert.equal(statuses.filter((status) => status === 401).length, 3);
    assert.equal(statuses.filter((status) => status === 429).length, guesses - 3);
    assert.is(audit.match(/result=failed/g)?.length, 3);
    assert.is((await login('right-password', '203.0.113.66')).status, 429, 'from the guessing address the user waits');
    assert.is((await login('right-password', '198.51.100.20')).status, 200, 'from another address the user is not locked out');
  } finally {
    await wharf.cleanup();
  }
});

test('Basic credentials are refused where they would travel in clear: behind a proxy that reports http', async () => {
  const wharf = await startWharf({ auth: {}, trustedProxies: ['127.0.0.0/8'], users: [{ name: 'ci', password: 'ci-password-1' }] });
  try {
    const headers = { authorization: basic('ci', 'ci-password-1') };
    const plain = await fetch(`${wharf.url}/v2/`, { headers: { ...headers, 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'registry.example' } });
    assert.is(plain.status, 401);
    assert.match(((await plain.json()) as { errors: { message: string }[] }).errors[0]!.message, 'over TLS or on loopback only');
    assert.is(challengeOf(plain).realm, 'http://registry.example/v2/token', 'the realm is on the origin the proxy reports');
    const tls = await fetch(`${wharf.url}/v2/`, { headers: { ...headers, 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'registry.example' } });
    assert.is(tls.status, 200, 'behind a TLS-terminating proxy they are fine');
    const login = await fetch(`${wharf.url}/v2/token?service=wharf`, { headers: { ...headers, 'X-Forwarded-Proto': 'https' } });
    assert.is(login.status, 200, 'docker login behind the TLS-terminating proxy');
    const token = (await login.json()) as { token: string };
    assert.is((await fetch(`${wharf.url}/v2/`, { headers: { authorization: `Bearer ${token.token}`, 'X-Forwarded-Proto': 'http' } })).status, 200, 'bearer tokens are short-lived and bound: accepted');
  } finally {
    await wharf.cleanup();
  }
});

test('access tokens (wharf_…) travel where passwords may: refused as a Bearer credential over clear-text HTTP', async () => {
  const wharf = await startWharf({ auth: {}, trustedProxies: ['127.0.0.0/8'], users: [{ name: 'ci', password: 'ci-password-1' }] });
  try {
    const created = await runCli(['token', 'create', '--user', 'ci', '--config', await cliConfig(wharf)]);
    assert.is(created.code, 0, created.stderr);
    const headers = { authorization: `Bearer ${created.stdout.trim()}`, 'X-Forwarded-Host': 'registry.example' };
    await wharf.accountsLoaded();
    assert.is((await fetch(`${wharf.url}/v2/`, { headers: { ...headers, 'X-Forwarded-Proto': 'https' } })).status, 200, 'the token works behind a TLS-terminating proxy');
    const plain = await fetch(`${wharf.url}/v2/`, { headers: { ...headers, 'X-Forwarded-Proto': 'http' } });
    assert.is(plain.status, 401);
    assert.match(((await plain.json()) as { errors: { message: string }[] }).errors[0]!.message, 'access tokens are accepted over TLS or on loopback only');
  } finally {
    await wharf.cleanup();
  }
});

test('a plain listener beyond loopback is named at start; auth off says so', async () => {
  let log = '';
  const exposed = await startWharf({ auth: {}, listeners: [{ address: '0.0.0.0', port: 0 }], log: (message) => { log += `${message}\n`; } });
  await exposed.cleanup();
  assert.match(log, /warning: 0\.0\.0\.0:0 is plain HTTP beyond loopback: clients logging in there send their password in clear text/);
  log = '';
  const open = await startWharf({ auth: { enabled: false }, log: (message) => { log += `${message}\n`; } });
  try {
    assert.match(log, 'authentication is off');
    assert.is((await fetch(`${open.url}/v2/`)).status, 200);
    assert.is((await fetch(`${open.url}/v2/token`)).status, 404);
  } finally {
    await open.cleanup();
  }
});

test('GET /api/docker/<key>/v2/auth: the docker config.json entry for good credentials', async () => {
  const wharf = await startWharf({ auth: {}, users: [{ name: 'ci', password: 'ci-password-1' }] });
  try {
    const response = await fetch(`${wharf.url}/api/docker/docker-local/v2/auth`, { headers: { authorization: basic('ci', 'ci-password-1') } });
    assert.is(response.status, 200);
    assert.equal(await response.json(), { auths: { [new URL(wharf.url).host]: { auth: Buffer.from('ci:ci-password-1').toString('base64') } } });
    assert.is(response.headers.get('cache-control'), 'no-store');
    assert.is((await fetch(`${wharf.url}/api/docker/docker-local/v2/auth`, { headers: { authorization: basic('ci', 'nope-nope') } })).status, 401);
    assert.is((await fetch(`${wharf.url}/api/docker/docker-local/v2/auth`)).status, 401);
  } finally {
    await wharf.cleanup();
  }
});

test('wharf serve on a fresh data directory prints the admin password once on stdout; stderr only says where it is', async () => {
  const dir = await tempDir();
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, `dataDir: ${dir}/data\ncertsDir: ${dir}/certs\nstorage: ${JSON.stringify(await testStorage())}\nlisteners: [{ address: 127.0.0.1, port: 0 }]\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\n`);
  const child = spawn(process.execPath, [cliPath, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${stdout} ${stderr}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('listening on')) { clearTimeout(timer); resolve(); }
      });
    });
    const password = /the first user is admin, password (\S+) \(shown once; log in with: docker login 127\.0\.0\.1:\d+ -u admin\)/.exec(stdout)?.[1];
    assert.ok(password, stdout);
    assert.match(stderr, `kept in ${dir}/data/initial-admin-password`);
    assert.not.match(stderr, password!);
  } finally {
    await terminate(child);
  }
});

test.run();
