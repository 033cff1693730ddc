import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic, eventually } from '../helpers/auth.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';

// README, "The `wharf` command": `wharf user add NAME --admin --password-stdin` adds an admin,
// and a running server takes the new user without a restart (polled, bounded).

let wharf: TestServer;

test.before(async () => {
  wharf = await startWharf({ auth: {}, audit: () => {}, repositories: { 'docker-local': { type: 'local' } } });
});
test.after(() => wharf.cleanup());

test('user add --admin makes an admin: admin-only routes answer to them, not to a user added without it', async () => {
  const config = await cliConfig(wharf);
  for (const [name, flags] of [['boss', ['--admin']], ['worker', []]] as const) {
    const added = await runCli(['user', 'add', name, ...flags, '--password-stdin', '--config', config], process.env, `${name}-password-1\n`);
    assert.is(added.code, 0, added.stderr);
  }
  const proxyConfig = (name: string) => fetch(`${wharf.url}/api/proxy-config/nginx`, { headers: { authorization: basic(name, `${name}-password-1`) } });
  // The server takes both users on its next look at the database (each poll bounded).
  await eventually('the server knows worker', async () => (await proxyConfig('worker')).status !== 401);
  assert.is((await proxyConfig('worker')).status, 403);
  await eventually('the server knows boss', async () => (await proxyConfig('boss')).status !== 401);
  assert.is((await proxyConfig('boss')).status, 200);
});

test.run();
