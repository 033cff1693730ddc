import { audit as auditTrail, type AuditWriter } from './auth/audit.js';
import { createInitialAdmin } from './auth/bootstrap.js';
import { loadSigningKey } from './auth/keys.js';
import { AuthService, type LoginHooks } from './auth/service.js';
import type { LoginAttempts } from './auth/throttle.js';
import { isLoopbackAddress } from './config/auth.js';
import type { Config } from './config/types.js';
import type { Accounts } from './store/metadata/types.js';

// Wires access control for the server: the accounts (in the metadata database), the signing key, the auth service,
// the first admin on a fresh data directory, and the start-up warnings.

export interface AccessControl {
  /** null when authentication is off. */
  service: AuthService | null;
  /**
   * On a fresh data directory (no user at all): creates admin with a random password, says so in
   * the log and returns the password (also in its file); null otherwise. Called once listening.
   */
  createFirstAdmin(): Promise<string | null>;
  close(): Promise<void>;
}

export interface AccessControlOptions {
  log: (message: string) => void;
  /** Where audit lines go; default: the operational log. */
  audit?: AuditWriter;
  now?: () => number;
  loginHooks?: LoginHooks;
  /** Where login attempts are counted (workers: the primary's, server/shared-state.ts); default: this process. */
  loginAttempts?: LoginAttempts;
}

/** `accounts`: the users and tokens of the configured metadata database (the server's store). */
export async function openAccessControl(config: Config, accounts: Accounts, options: AccessControlOptions): Promise<AccessControl> {
  const { log } = options;
  if (!config.auth.enabled) {
    log('authentication is off (auth.enabled: false): every caller may pull, push, overwrite and delete');
    return { service: null, createFirstAdmin: async () => null, close: async () => undefined };
  }
  for (const listener of config.listeners) {
    if (listener.tls === 'none' && !listener.redirectToHttps && !isLoopbackAddress(listener.address)) {
      log(`warning: ${listener.address}:${listener.port} is plain HTTP beyond loopback: clients logging in there send their password in clear text; use a TLS listener`);
    }
  }
  const now = options.now ?? Date.now;
  const service = new AuthService({
    config: config.auth,
    permissions: config.permissions,
    accounts,
    key: await loadSigningKey(config.certsDir),
    audit: auditTrail(options.audit ?? log),
    now,
    ...(options.loginHooks ? { hooks: options.loginHooks } : {}),
    ...(options.loginAttempts ? { loginAttempts: options.loginAttempts } : {}),
    onError: (error) => log(`auth: cannot read users and tokens: ${error instanceof Error ? error.message : String(error)}`),
  });
  await service.start();
  return {
    service,
    async createFirstAdmin() {
      if (!service.directory.empty) return null;
      const created = await createInitialAdmin(accounts, config.dataDir, now());
      if (!created) return null;
      log(`created user admin with a random password, shown once on standard output and kept in ${created.file} (readable by its owner only); change it with wharf user passwd admin`);
      await service.directory.refresh();
      return created.password;
    },
    close: () => service.close(),
  };
}
