import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isValidAccountName, minPasswordLength, removalNeededFor } from '../auth/accounts.js';
import { initialPasswordFile } from '../auth/bootstrap.js';
import { hashPassword } from '../auth/passwords.js';
import type { Config } from '../config/types.js';
import { auditCli, columns, isoDate, readStdin, UsageError, withAccounts } from './common.js';

// wharf user add|passwd|remove|list: writes the account store directly; a running server picks
// the change up within a second (it polls the store's change counter).

async function newPassword(fromStdin: boolean | undefined): Promise<string> {
  if (!fromStdin) throw new UsageError('pass the password on standard input with --password-stdin (it never goes on the command line)');
  const password = await readStdin();
  if (password.length < minPasswordLength) throw new Error(`the password must be at least ${minPasswordLength} characters long`);
  return password;
}

function userName(positionals: string[]): string {
  const name = positionals[0];
  if (!name) throw new UsageError('name the user');
  if (!isValidAccountName(name)) throw new Error(`invalid user name ${JSON.stringify(name)}: letters, digits, ".", "_", "@" and "-", starting with a letter or digit`);
  return name;
}

export async function userCommand(args: string[], loadConfig: (file: string | undefined) => Config): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { config: { type: 'string' }, groups: { type: 'string' }, admin: { type: 'boolean' }, 'password-stdin': { type: 'boolean' } },
  });
  const config = loadConfig(values.config);
  await withAccounts(config, async (store) => {
    const now = Date.now();
    const forget = { forgetRemovalsBefore: now - removalNeededFor(config.auth) };
    if (sub === 'add') {
      const name = userName(positionals);
      const groups = values.groups ? values.groups.split(',').map((group) => group.trim()).filter(Boolean) : [];
      const bad = groups.find((group) => !isValidAccountName(group));
      if (bad !== undefined) throw new Error(`invalid group name ${JSON.stringify(bad)}`);
      const passwordHash = await hashPassword(await newPassword(values['password-stdin']));
      if (!(await store.addUser({ name, passwordHash, groups, admin: values.admin ?? false, createdAt: now, updatedAt: now, passwordChangedAt: now }, forget))) {
        throw new Error(`user ${name} exists already (wharf user passwd changes the password)`);
      }
      auditCli({ action: 'user-add', target: name, result: 'ok' });
      process.stdout.write(`wharf: added user ${name}${values.admin ? ' (admin)' : ''}${groups.length ? ` in ${groups.join(', ')}` : ''}\n`);
    } else if (sub === 'passwd') {
      const name = userName(positionals);
      if (!(await store.getUser(name))) throw new Error(`no user ${name}`);
      if (!(await store.setPassword(name, await hashPassword(await newPassword(values['password-stdin'])), now))) throw new Error(`no user ${name}`);
      auditCli({ action: 'user-passwd', target: name, result: 'ok' });
      process.stdout.write(`wharf: changed the password of ${name}; their refresh tokens no longer work\n`);
      // The first admin's generated password no longer works: its file would only mislead.
      if (name === 'admin') await rm(join(config.dataDir, initialPasswordFile), { force: true });
    } else if (sub === 'remove') {
      const name = userName(positionals);
      if (!(await store.removeUser(name, now, forget))) throw new Error(`no user ${name}`);
      auditCli({ action: 'user-remove', target: name, result: 'ok' });
      process.stdout.write(`wharf: removed user ${name} and revoked their access tokens\n`);
    } else if (sub === 'list') {
      const users = await store.listUsers();
      process.stdout.write(columns(['NAME', 'ADMIN', 'GROUPS', 'CREATED', 'PASSWORD CHANGED'], users.map((user) => [
        user.name, user.admin ? 'yes' : 'no', user.groups.join(',') || '-', isoDate(user.createdAt), isoDate(user.passwordChangedAt),
      ])));
    } else {
      throw new UsageError(`unknown user command ${JSON.stringify(sub ?? '')}: add, passwd, remove or list`);
    }
  });
}
