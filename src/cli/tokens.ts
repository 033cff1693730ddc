import { parseArgs } from 'node:util';
import { newAccessToken } from '../auth/access-tokens.js';
import { isValidAccountName } from '../auth/accounts.js';
import { parseTokenScope } from '../auth/scopes.js';
import { duration } from '../config/fields.js';
import type { Config } from '../config/types.js';
import { auditCli, columns, isoDate, UsageError, withAccounts } from './common.js';

// wharf token create|list|revoke: access tokens for CI. The token is printed once; only a hash
// of its secret is stored. It works as the password in docker login and as a Bearer or Basic
// credential, and never allows more than its owner may do at the moment of use.

/** The longest --expires: 100 years, past any CI job's life, and an expiry every Date can show. */
const maxLifetimeMs = 36_500 * 86_400_000;

/** The --expires lifetime in ms (null: none), refused before anything is stored. */
function lifetimeOf(expires: string | undefined): number | null {
  if (expires === undefined) return null;
  const lifetime = duration(expires, '--expires');
  if (lifetime === 0) throw new UsageError('--expires: a token that expires at once is no token; give a lifetime like 30d, or none');
  if (lifetime > maxLifetimeMs) throw new UsageError(`--expires: at most 36500d (100 years), got ${expires}; or give none for a token that does not expire`);
  return lifetime;
}

export async function tokenCommand(args: string[], loadConfig: (file: string | undefined) => Config): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string' }, user: { type: 'string' }, scope: { type: 'string', multiple: true },
      expires: { type: 'string' }, description: { type: 'string' },
    },
  });
  const config = loadConfig(values.config);
  const lifetime = sub === 'create' ? lifetimeOf(values.expires) : null;
  await withAccounts(config, async (store) => {
    const now = Date.now();
    if (sub === 'create') {
      const owner = values.user;
      if (!owner || !isValidAccountName(owner)) throw new UsageError('name the token\'s owner with --user NAME');
      if (!(await store.getUser(owner))) throw new Error(`no user ${owner}`);
      const scope = values.scope ?? [];
      for (const item of scope) {
        const { repoKey } = parseTokenScope(item); // refuses a malformed scope now, not at use
        // Kept (the repository may be configured later), but said: it may be a typo.
        if (repoKey !== '*' && !Object.hasOwn(config.repositories, repoKey)) {
          process.stderr.write(`wharf: warning: --scope ${item}: no repository ${repoKey} is configured (configured: ${Object.keys(config.repositories).join(', ')}); the scope applies once one is\n`);
        }
      }
      const expiresAt = lifetime === null ? null : now + lifetime;
      const { id, token, secretHash } = newAccessToken();
      await store.addToken({ id, owner, secretHash, scope, expiresAt, description: values.description ?? '', createdAt: now, lastUsedAt: null, revokedAt: null });
      auditCli({ action: 'token-create', target: `${owner}/token:${id}`, result: 'ok' });
      process.stderr.write(`wharf: token ${id} for ${owner}${expiresAt === null ? '' : `, expires ${isoDate(expiresAt)}`}; it is shown once, below:\n`);
      process.stdout.write(`${token}\n`);
    } else if (sub === 'list') {
      const tokens = await store.listTokens();
      process.stdout.write(columns(['ID', 'OWNER', 'SCOPE', 'EXPIRES', 'LAST USED', 'STATUS', 'DESCRIPTION'], tokens.map((token) => [
        token.id, token.owner, token.scope.join(' ') || '(all of the owner\'s)', isoDate(token.expiresAt), isoDate(token.lastUsedAt),
        token.revokedAt !== null ? 'revoked' : token.expiresAt !== null && token.expiresAt <= now ? 'expired' : 'active', token.description || '-',
      ])));
    } else if (sub === 'revoke') {
      const id = positionals[0];
      if (!id) throw new UsageError('name the token id (wharf token list shows them)');
      if (!(await store.revokeToken(id, now))) throw new Error(`no active token ${id}`);
      auditCli({ action: 'token-revoke', target: id, result: 'ok' });
      process.stdout.write(`wharf: revoked token ${id}\n`);
    } else {
      throw new UsageError(`unknown token command ${JSON.stringify(sub ?? '')}: create, list or revoke`);
    }
  });
}
