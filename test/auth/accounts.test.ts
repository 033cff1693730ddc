import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AccountDirectory, removalNeededFor } from '../../src/auth/accounts.js';
import { verifyPassword } from '../../src/auth/passwords.js';
import { loadConfig } from '../../src/config/load.js';
import { openConfiguredMetadata } from '../../src/storage.js';
import { metadataFile } from '../../src/store/index.js';
import { openMetadata, type Metadata } from '../../src/store/metadata/index.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { cliConfig, runCli, tempDir, testStorage } from '../helpers/server.js';

// Users and tokens in the metadata database (SQLite and PostgreSQL), and the wharf user/token commands.

const databases: [string, () => Promise<Metadata>][] = [
  ['SQLite', async () => openMetadata({ driver: 'sqlite', path: metadataFile(await tempDir()) })],
  ['PostgreSQL', async () => openMetadata({ driver: 'postgres', url: await postgresDatabase() })],
];

const user = (name: string, at = 1) => ({ name, passwordHash: 'scrypt$x', groups: ['devs'], admin: false, createdAt: at, updatedAt: at, passwordChangedAt: at });

for (const [database, open] of databases) {
test(`${database}: users and tokens; every change moves the counter, noting a token use does not`, async () => {
  const metadata = await open();
  const store = metadata.accounts;
  const start = await store.changeCounter();
  assert.ok(await store.addUser(user('ci')));
  assert.not.ok(await store.addUser(user('ci')), 'a name is taken once');
  assert.is(await store.changeCounter(), start + 1, 'a refused add changes nothing');
  await store.addToken({ id: 't1', owner: 'ci', secretHash: 'h', scope: ['repository:a:pull'], expiresAt: null, description: 'CI', createdAt: 2, lastUsedAt: null, revokedAt: null });
  await store.noteTokenUses([{ id: 't1', at: 7 }]);
  assert.is(await store.changeCounter(), start + 2);
  assert.is((await store.listTokens())[0]!.lastUsedAt, 7);
  assert.ok(await store.setPassword('ci', 'scrypt$y', 9));
  assert.equal((await store.getUser('ci'))!.passwordChangedAt, 9);
  assert.ok(await store.removeUser('ci', 10));
  assert.is((await store.listTokens())[0]!.revokedAt, 10, "a removed user's tokens are revoked with them");
  assert.not.ok(await store.revokeToken('t1', 11), 'already revoked');
  assert.is(await store.getUser('ci'), null);
  await metadata.close();
});

test(`${database}: a removal is recorded per name, never before that user was added; the name added again is added after it`, async () => {
  const metadata = await open();
  const store = metadata.accounts;
  assert.ok(await store.addUser(user('ci', 50)));
  assert.ok(await store.removeUser('ci', 40), 'removed on a host whose clock is behind');
  assert.equal(await store.listRemovals(), [{ name: 'ci', removedAt: 50 }]);
  assert.ok(await store.addUser(user('ci', 50)), 'added again within the same millisecond');
  assert.is((await store.getUser('ci'))!.createdAt, 51);
  assert.ok(await store.removeUser('ci', 60));
  assert.equal(await store.listRemovals(), [{ name: 'ci', removedAt: 60 }], 'the last removal');
  await metadata.close();
});

test(`${database}: removals before forgetRemovalsBefore go when a user is added or removed, in the same change; later ones stay`, async () => {
  const metadata = await open();
  const store = metadata.accounts;
  for (const [name, at] of [['old', 10], ['recent', 30]] as const) {
    assert.ok(await store.addUser(user(name, at)));
    assert.ok(await store.removeUser(name, at));
  }
  assert.ok(await store.addUser(user('ci', 40), { forgetRemovalsBefore: 20 }));
  assert.equal(await store.listRemovals(), [{ name: 'recent', removedAt: 30 }]);
  assert.ok(await store.removeUser('ci', 50, { forgetRemovalsBefore: 35 }));
  assert.equal(await store.listRemovals(), [{ name: 'ci', removedAt: 50 }], 'the removal just made is never before the cutoff');
  assert.not.ok(await store.removeUser('nobody', 60, { forgetRemovalsBefore: 100 }), 'a refused change forgets nothing');
  assert.equal(await store.listRemovals(), [{ name: 'ci', removedAt: 50 }]);
  await metadata.close();
});

test(`${database}: the server-side directory loads again only when the counter moved`, async () => {
  const metadata = await open();
  const store = metadata.accounts;
  let changes = 0;
  const directory = new AccountDirectory(store, { onChange: () => { changes++; }, onError: (error) => { throw error; }, now: () => 100 });
  await directory.refresh();
  await directory.refresh();
  assert.is(changes, 1);
  assert.ok(directory.empty);
  await store.addUser(user('ci'));
  await store.addToken({ id: 't1', owner: 'ci', secretHash: 'h', scope: [], expiresAt: 100, description: '', createdAt: 2, lastUsedAt: null, revokedAt: null });
  await directory.refresh();
  assert.is(changes, 2);
  assert.is(directory.user('ci')?.name, 'ci');
  assert.is(directory.usableToken('t1'), undefined, 'expired at the clock');
  await directory.close();
  await metadata.close();
});
}

test('wharf user add and remove forget removals older than the longest-lived token (refresh tokens, 7d by default, and an hour), keep the others', async () => {
  const config = await cliConfig({ dataDir: await tempDir(), storage: await testStorage() });
  const cli = (args: string[], input?: string) => runCli([...args, '--config', config], process.env, input);
  const metadata = await openConfiguredMetadata(loadConfig(config));
  const store = metadata.accounts;
  const needed = removalNeededFor(loadConfig(config).auth);
  assert.is(needed, 7 * 86_400_000 + 3_600_000);
  // Removals made (by the store, with their time) long ago and a minute inside the horizon.
  const now = Date.now();
  for (const [name, at] of [['long-gone', now - needed - 60_000], ['within', now - needed + 60_000]] as const) {
    assert.ok(await store.addUser(user(name, at)));
    assert.ok(await store.removeUser(name, at));
  }
  assert.is((await cli(['user', 'add', 'ci', '--password-stdin'], 'first-password\n')).code, 0);
  assert.equal((await store.listRemovals()).map((removal) => removal.name), ['within']);
  assert.is((await cli(['user', 'remove', 'ci'])).code, 0);
  assert.equal((await store.listRemovals()).map((removal) => removal.name).sort(), ['ci', 'within']);
  await metadata.close();
});

test('wharf user and wharf token write the database, each change with its audit line; secrets only on stdin and printed once', async () => {
  const config = await cliConfig({ dataDir: await tempDir(), storage: await testStorage() });
  const cli = (args: string[], input?: string) => runCli([...args, '--config', config], process.env, input);
  const refused = await cli(['user', 'add', 'ci']);
  assert.is(refused.code, 2);
  assert.match(refused.stderr, '--password-stdin');
  const added = await cli(['user', 'add', 'ci', '--groups', 'devs,ops', '--password-stdin'], 'first-password\n');
  assert.is(added.code, 0, added.stderr);
  assert.match(added.stderr, 'audit: who=cli:');
  assert.match(added.stderr, 'action=user-add target=ci result=ok');
  assert.is((await cli(['user', 'add', 'ci', '--password-stdin'], 'other-password')).code, 1, 'exists already');
  assert.is((await cli(['user', 'add', 'x:y', '--password-stdin'], 'other-password')).code, 1, 'no colon in a name');
  assert.is((await cli(['user', 'add', 'eve', '--password-stdin'], 'short')).code, 1, 'too short');
  const list = await cli(['user', 'list']);
  assert.match(list.stdout, /^ci\s+no\s+devs,ops\s/m);
  const passwd = await cli(['user', 'passwd', 'ci', '--password-stdin'], 'second-password');
  assert.is(passwd.code, 0);
  assert.match(passwd.stderr, /audit: who=cli:\S+ from=cli action=user-passwd target=ci result=ok/);
  assert.not.match(passwd.stderr, 'second-password');
  const metadata = await openConfiguredMetadata(loadConfig(config));
  const store = metadata.accounts;
  assert.ok(await verifyPassword('second-password', (await store.getUser('ci'))!.passwordHash));
  const created = await cli(['token', 'create', '--user', 'ci', '--scope', 'repository:docker-local/team/**:pull', '--expires', '30d', '--description', 'release job']);
  assert.is(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  assert.match(created.stderr, /audit: who=cli:\S+ from=cli action=token-create target=ci\/token:[0-9a-f]{16} result=ok/);
  assert.not.match(created.stderr, token, 'the audit line holds no secret');
  assert.match(token, /^wharf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  const id = token.slice(6, 22);
  const tokens = await cli(['token', 'list']);
  assert.match(tokens.stdout, new RegExp(`^${id}\\s+ci\\s+repository:docker-local/team/\\*\\*:pull\\s+\\S+\\s+-\\s+active\\s+release job$`, 'm'));
  assert.not.match(tokens.stdout, token.slice(23), 'the secret is never shown again');
  assert.not.ok(JSON.stringify(await store.listTokens()).includes(token.slice(23)), 'nor stored');
  assert.not.match(created.stderr, 'warning', 'a configured repository key is not warned about');
  assert.is((await cli(['token', 'create', '--user', 'ci', '--scope', 'repository:docker-local:fly'])).code, 2);
  // A key no repository has yet: created (it may be configured later), with a warning naming it.
  const unknownKey = await cli(['token', 'create', '--user', 'ci', '--scope', 'repository:*/team/**:pull', '--scope', 'repository:docker-lcoal/team/**:pull']);
  assert.is(unknownKey.code, 0, unknownKey.stderr);
  assert.match(unknownKey.stdout, /^wharf_[0-9a-f]{16}_/);
  assert.is(unknownKey.stderr.split('\n').filter((line) => line.includes('warning')).length, 1, 'the * key is no unknown key');
  assert.match(unknownKey.stderr, 'wharf: warning: --scope repository:docker-lcoal/team/**:pull: no repository docker-lcoal is configured (configured: docker-local); the scope applies once one is\n');
  assert.is((await cli(['token', 'create', '--user', 'nobody'])).code, 1);
  const instant = await cli(['token', 'create', '--user', 'ci', '--expires', '0s']);
  assert.is(instant.code, 2, 'a token that would expire at once');
  assert.match(instant.stderr, '--expires: a token that expires at once is no token');
  const lasting = (await cli(['token', 'create', '--user', 'ci'])).stdout.trim().slice(6, 22);
  assert.match((await cli(['token', 'list'])).stdout, new RegExp(`^${lasting}\\s+ci\\s+\\(all of the owner's\\)\\s+-\\s+-\\s+active`, 'm'), 'no --expires: no expiry');
  const revoked = await cli(['token', 'revoke', id]);
  assert.is(revoked.code, 0);
  assert.match(revoked.stderr, `action=token-revoke target=${id} result=ok`);
  assert.match((await cli(['token', 'list'])).stdout, /\srevoked\s/);
  const removed = await cli(['user', 'remove', 'ci']);
  assert.is(removed.code, 0);
  assert.match(removed.stderr, /audit: who=cli:\S+ from=cli action=user-remove target=ci result=ok/);
  assert.is((await cli(['user', 'remove', 'ci'])).code, 1);
  await metadata.close();
});

test('wharf token create --expires: at most 100 years, refused before anything is stored; a longer expiry stored by an older build lists as never', async () => {
  const config = await cliConfig({ dataDir: await tempDir(), storage: await testStorage() });
  const cli = (args: string[], input?: string) => runCli([...args, '--config', config], process.env, input);
  assert.is((await cli(['user', 'add', 'carol', '--password-stdin'], 'carol-password')).code, 0);
  const metadata = await openConfiguredMetadata(loadConfig(config));
  const store = metadata.accounts;
  try {
    for (const expires of ['99999999d', '36501d']) {
      const refused = await cli(['token', 'create', '--user', 'carol', '--expires', expires]);
      assert.is(refused.code, 2, `${expires}: a usage error`);
      assert.match(refused.stderr, `wharf: --expires: at most 36500d (100 years), got ${expires}`);
      assert.not.match(refused.stderr, 'audit:', 'nothing done, nothing audited');
      assert.is(refused.stdout, '');
    }
    assert.equal(await store.listTokens(), [], 'nothing stored');
    const longest = await cli(['token', 'create', '--user', 'carol', '--expires', '36500d']);
    assert.is(longest.code, 0, longest.stderr);
    assert.match(longest.stdout, /^wharf_[0-9a-f]{16}_/);
    // As an older build stored `--expires 99999999d`: past the largest Date.
    await store.addToken({ id: '00000000000000ff', owner: 'carol', secretHash: 'h', scope: [], expiresAt: 8641796217402800, description: 'old', createdAt: 1, lastUsedAt: null, revokedAt: null });
    const list = await cli(['token', 'list']);
    assert.is(list.code, 0, list.stderr);
    assert.match(list.stdout, /^00000000000000ff\s+carol\s+\(all of the owner's\)\s+never\s+-\s+active\s+old$/m);
  } finally {
    await metadata.close();
  }
});

test.run();
