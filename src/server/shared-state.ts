import { EventEmitter } from 'node:events';
import { tooManyLogins, type LoginAttempts } from '../auth/throttle.js';
import type { FillCoordinator } from '../cache/followed-fill.js';
import { afterFailure, type BreakerSettings, type CircuitBreaker } from '../repos/breaker.js';
import type { SharedUpstreamState } from '../repos/upstream-gate.js';
import type { SessionLocks } from '../store/session-locks.js';
import type { AcmeAnswers, ChallengeChange, ServedCertificate } from '../tls/acme.js';
import type { CachedToken, TokenStore } from '../upstream/tokens.js';
import { workerFills } from './fill-claims.js';
import { workerManifestFlights } from './manifest-flights.js';
import type { WorkerChannel } from './ipc.js';

// A worker's side of the state every worker must share, each piece behind the interface whose
// default is in-process (so a multi-node deployment can supply its own): the primary holds the
// one copy (primary-state.ts) and these ask it or mirror what it broadcasts.

/** What startServer takes in a worker instead of its in-process defaults. */
export interface SharedState {
  fills: FillCoordinator;
  sessionLocks: SessionLocks;
  upstream: SharedUpstreamState;
  loginAttempts: LoginAttempts;
  /** Every worker's metrics, aggregated by the primary. */
  metrics: () => Promise<string>;
  acme: AcmeAnswers | null;
  /** Workers in all: each may hold 1/N of downloads.memory, so together they stay within it. */
  workers: number;
}

/** Each remote repository's circuit breaker state, by key (the primary's, as a worker starts). */
export type BreakerStates = Record<string, { failures: number; offlineUntil: number }>;

/** A login attempt the primary counted (by id), or refused for `wait` seconds. */
export type LoginReserveAnswer = { id: number } | { wait: number };

function sessionLocks(channel: WorkerChannel): SessionLocks {
  return {
    async tryLock(uuid) {
      const taken = await channel.request<boolean>('lock.take', { uuid });
      return taken ? () => channel.tell('lock.release', { uuid }) : null;
    },
  };
}

function tokens(channel: WorkerChannel): (owner: string) => TokenStore {
  // One book in the primary, each repository's tokens under its own owner (never another's).
  return (owner) => ({
    get: async (key) => (await channel.request<CachedToken | null>('token.get', { key: `${owner} ${key}` })) ?? undefined,
    set: (key, token) => channel.tell('token.set', { key: `${owner} ${key}`, token }),
    delete: (key) => channel.tell('token.delete', { key: `${owner} ${key}` }),
  });
}

function breakers(channel: WorkerChannel, now: BreakerStates): (key: string, settings: BreakerSettings) => CircuitBreaker {
  // A mirror of the primary's state per repository, so that asking costs no round trip: what it
  // was when this worker started, then what the primary broadcasts.
  const states = new Map(Object.entries(now));
  channel.on('breaker.state', (body) => {
    const { key, failures, offlineUntil } = body as { key: string; failures: number; offlineUntil: number };
    states.set(key, { failures, offlineUntil });
  });
  return (key, settings) => {
    const state = () => states.get(key) ?? { failures: 0, offlineUntil: 0 };
    return {
      get offlineUntil() { return state().offlineUntil; },
      get failures() { return state().failures; },
      failed(now) {
        const next = afterFailure(state(), settings, now);
        states.set(key, next);
        channel.tell('breaker.failed', { key, settings, now });
        return next.failures >= settings.offlineAfter;
      },
      succeeded() {
        if (state().failures === 0) return;
        states.set(key, { failures: 0, offlineUntil: state().offlineUntil });
        channel.tell('breaker.ok', { key });
      },
    };
  };
}

function loginAttempts(channel: WorkerChannel): LoginAttempts {
  // The primary counts each attempt before any worker hashes its password: one throttle for all.
  return {
    async reserve(user, address) {
      const answer = await channel.request<LoginReserveAnswer>('login.reserve', { user, address });
      if ('wait' in answer) throw tooManyLogins(answer.wait);
      return { succeeded: () => channel.tell('login.succeeded', { id: answer.id }) };
    },
  };
}

/** The primary's ACME answers, relayed: challenges on every worker, the certificate once renewed. */
class AcmeRelay extends EventEmitter implements AcmeAnswers {
  current: ServedCertificate | null;
  readonly #tokens = new Map<string, string>();
  readonly #alpn = new Map<string, ServedCertificate>();

  constructor(channel: WorkerChannel, current: ServedCertificate | null) {
    super();
    this.current = current;
    channel.on('acme.challenge', (body) => {
      const change = body as ChallengeChange;
      if (change.kind === 'http-01') {
        if (change.keyAuthorization === null) this.#tokens.delete(change.token);
        else this.#tokens.set(change.token, change.keyAuthorization);
      } else if (change.certificate === null) this.#alpn.delete(change.name);
      else this.#alpn.set(change.name, change.certificate);
    });
    channel.on('acme.certificate', (body) => {
      this.current = body as ServedCertificate;
      this.emit('certificate', this.current);
    });
  }

  onCertificate(subscriber: (served: ServedCertificate) => void): void {
    this.on('certificate', subscriber);
  }

  keyAuthorization(token: string): string | undefined {
    return this.#tokens.get(token);
  }

  alpnCertificate(name: string): ServedCertificate | undefined {
    return this.#alpn.get(name);
  }
}

/** This worker's view of the shared state; `acme` is the primary's current certificate when ACME is on. */
export function workerState(channel: WorkerChannel, { acme, workers, breakers: now }: { acme: { current: ServedCertificate | null } | null; workers: number; breakers: BreakerStates }): SharedState {
  return {
    fills: workerFills(channel),
    sessionLocks: sessionLocks(channel),
    upstream: { tokens: tokens(channel), breaker: breakers(channel, now), manifests: workerManifestFlights(channel) },
    loginAttempts: loginAttempts(channel),
    metrics: () => channel.request<string>('metrics', null),
    acme: acme ? new AcmeRelay(channel, acme.current) : null,
    workers,
  };
}
