import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';

// README, "The `wharf` command": `wharf user add NAME --admin --password-stdin` adds an admin,
// and a running server takes the new user without a restart (the test waits for its next account snapshot). "Set up": the first
// start keeps admin's password in data/initial-admin-password until `user passwd admin` removes it.

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
  // The server takes both users on its next look at the database.
  await wharf.accountsLoaded();
  assert.is((await proxyConfig('worker')).status, 403);
  assert.is((await proxyConfig('boss')).status, 200);
});

test('user passwd admin removes data/initial-admin-password, whose password no longer works; another user\'s passwd leaves it', async () => {
  const fresh = await startWharf({ auth: {}, audit: () => {}, repositories: { 'docker-local': { type: 'local' } } });
  try {
    const file = join(fresh.dataDir, 'initial-admin-password');
    const config = await cliConfig(fresh);
    assert.is((await readFile(file, 'utf8')).trim(), fresh.initialAdminPassword);
    const added = await runCli(['user', 'add', 'ci', '--password-stdin', '--config', config], process.env, 'ci-password-1\n');
    assert.is(added.code, 0, added.stderr);
    const other = await runCli(['user', 'passwd', 'ci', '--password-stdin', '--config', config], process.env, 'ci-password-2\n');
    assert.is(other.code, 0, other.stderr);
    assert.is((await readFile(file, 'utf8')).trim(), fresh.initialAdminPassword, 'still the admin password');
    const changed = await runCli(['user', 'passwd', 'admin', '--password-stdin', '--config', config], process.env, 'admin-password-2\n');
    assert.is(changed.code, 0, changed.stderr);
    await access(file).then(() => assert.unreachable('the file is still there'), (error: NodeJS.ErrnoException) => assert.is(error.code, 'ENOENT'));
  } finally {
    await fresh.cleanup();
  }
});

test.run();
