import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import type { TrustedProxies } from '../routing/proxies.js';
import type { CollectSummary } from '../store/gc.js';
import type { Env } from './env.js';
import { openGate, requestInfo } from './request.js';

// Administration, admins only:
//   POST /api/system/storage/gc[?dryRun=true]   a garbage collection now (Artifactory's path);
//                                                answers with what was (or would be) freed

export interface AdminOptions {
  live: () => { trustedProxies: TrustedProxies };
  auth: AuthService | null;
  collectGarbage: (options: { dryRun: boolean }) => Promise<CollectSummary>;
}

export function adminRoutes(app: Hono<Env>, options: AdminOptions): void {
  app.post('/api/system/storage/gc', async (c) => {
    const gate = await openGate(c, options.auth, requestInfo(c, options.live().trustedProxies), null);
    gate.requireAdmin('garbage collection');
    const dryRun = c.req.query('dryRun');
    if (dryRun !== undefined && dryRun !== 'true' && dryRun !== 'false') {
      throw new RegistryError('UNSUPPORTED', { status: 400, message: `dryRun takes true or false, got ${JSON.stringify(dryRun.slice(0, 20))}` });
    }
    let summary: CollectSummary;
    try {
      summary = await options.collectGarbage({ dryRun: dryRun === 'true' });
    } catch (error) {
      // The one lease: another collection (periodic, wharf gc, another node) is at work.
      if (error instanceof Error && /another garbage collection is running/.test(error.message)) {
        throw new RegistryError('UNSUPPORTED', { status: 409, message: `${error.message}; try again when it has finished` });
      }
      throw error;
    }
    gate.audit({ action: 'gc', target: dryRun === 'true' ? 'storage (dry run)' : 'storage', result: 'ok' });
    return c.json(summary);
  });
}
