import type { Hono } from 'hono';
import type { Env } from './env.js';

// Probes for load balancers and orchestrators, answered without authentication and without
// saying anything about the configuration: liveness, readiness with its reasons, and
// Artifactory's ping (what Artifactory-aware tooling checks).

export interface Readiness {
  ready: boolean;
  /** Why not, in words that name no path, host or key. */
  reasons: string[];
}

export function addHealthRoutes(app: Hono<Env>, ready: () => Promise<Readiness>): void {
  const text = (body: string, status = 200) => new Response(body, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' } });
  app.get('/healthz', () => text('ok\n'));
  app.get('/api/system/ping', () => text('OK'));
  app.get('/readyz', async () => {
    const state = await ready();
    return state.ready ? text('ready\n') : text(`not ready: ${state.reasons.join('; ')}\n`, 503);
  });
}
