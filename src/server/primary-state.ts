import { LRUCache } from 'lru-cache';
import { AggregatorRegistry } from 'prom-client';
import { LoginThrottle, throttleOptions, type LoginAttempt } from '../auth/throttle.js';
import type { AuthConfig } from '../config/auth.js';
import { RegistryError } from '../oci/errors.js';
import { afterFailure, type BreakerSettings } from '../repos/breaker.js';
import type { AcmeCertificates } from '../tls/acme.js';
import type { CachedToken } from '../upstream/tokens.js';
import type { PrimaryHub, WorkerLink } from './ipc.js';
import { serveFillClaims } from './fill-claims.js';
import { serveManifestFlights } from './manifest-flights.js';
import type { BreakerStates, LoginReserveAnswer } from './shared-state.js';

// The primary's side of the shared state (the workers' side is shared-state.ts): which worker
// fetches each digest and who follows it, upload session locks, upstream tokens, circuit
// breakers (a worker starting later is given their state), login attempts, metrics and ACME
// challenge answers. A worker that dies gives up what it held: its downloads fail for their
// followers (the next request fetches again), its locks go.

export function serveSharedState<Worker extends WorkerLink>(hub: PrimaryHub<Worker>, options: { acme: AcmeCertificates | null; throttle: AuthConfig['throttle'] | null }): { forget(worker: Worker): void; breakers(): BreakerStates } {
  const fills = serveFillClaims(hub);
  const manifests = serveManifestFlights(hub);
  const locks = new Map<string, Worker>();
  hub.answer('lock.take', (body, worker) => {
    const { uuid } = body as { uuid: string };
    if (locks.has(uuid)) return false;
    locks.set(uuid, worker);
    return true;
  });
  hub.hear('lock.release', (body, worker) => {
    const { uuid } = body as { uuid: string };
    if (locks.get(uuid) === worker) locks.delete(uuid);
  });

  const tokens = new LRUCache<string, CachedToken>({ max: 10_000 });
  hub.answer('token.get', (body) => {
    const cached = tokens.get((body as { key: string }).key);
    return cached && cached.expiresAt > Date.now() ? cached : null;
  });
  hub.hear('token.set', (body) => {
    const { key, token } = body as { key: string; token: CachedToken };
    tokens.set(key, token);
  });
  hub.hear('token.delete', (body) => tokens.delete((body as { key: string }).key));

  const breakers = new Map<string, { failures: number; offlineUntil: number }>();
  hub.hear('breaker.failed', (body) => {
    const { key, settings, now } = body as { key: string; settings: BreakerSettings; now: number };
    const state = afterFailure(breakers.get(key) ?? { failures: 0, offlineUntil: 0 }, settings, now);
    breakers.set(key, state);
    hub.broadcast('breaker.state', { key, ...state });
  });
  hub.hear('breaker.ok', (body) => {
    const { key } = body as { key: string };
    const state = { failures: 0, offlineUntil: breakers.get(key)?.offlineUntil ?? 0 };
    breakers.set(key, state);
    hub.broadcast('breaker.state', { key, ...state });
  });

  if (options.throttle) serveLoginThrottle(hub, options.throttle);

  const aggregator = new AggregatorRegistry();
  hub.answer('metrics', () => aggregator.clusterMetrics());

  options.acme?.onChallenge((change) => hub.broadcast('acme.challenge', change));
  options.acme?.onCertificate((served) => hub.broadcast('acme.certificate', { cert: served.cert, key: served.key }));

  return {
    breakers: () => Object.fromEntries(breakers),
    forget(worker) {
      fills.forget(worker);
      manifests.forget(worker);
      for (const [uuid, holder] of locks) if (holder === worker) locks.delete(uuid);
    },
  };
}

/** Login attempts: one throttle, which counts each worker's attempts in the order they arrive. */
function serveLoginThrottle<Worker extends WorkerLink>(hub: PrimaryHub<Worker>, settings: AuthConfig['throttle']): void {
  const throttle = new LoginThrottle(throttleOptions(settings, Date.now));
  const attempts = new LRUCache<number, LoginAttempt>({ max: 50_000 });
  let nextAttempt = 0;
  hub.answer('login.reserve', (body) => {
    const { user, address } = body as { user: string; address: string };
    try {
      attempts.set(++nextAttempt, throttle.reserve(user, address));
      return { id: nextAttempt } satisfies LoginReserveAnswer;
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'TOOMANYREQUESTS') return { wait: Number(error.headers['Retry-After']) } satisfies LoginReserveAnswer;
      throw error;
    }
  });
  hub.hear('login.succeeded', (body) => {
    const { id } = body as { id: number };
    attempts.get(id)?.succeeded();
    attempts.delete(id);
  });
}
