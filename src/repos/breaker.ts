// The circuit breaker of a remote repository: after offlineAfter consecutive upstream failures the
// upstream is not asked for retryAfter. Its state is this process's by default; workers share the
// primary's (server/shared-state.ts), so every worker stops asking at once.

export interface CircuitBreaker {
  /** Until when (ms since the epoch) the upstream is not asked; 0 or past: it may be. */
  readonly offlineUntil: number;
  /** Consecutive failures so far. */
  readonly failures: number;
  /** Counts a failure; true when it marks the upstream offline. */
  failed(now: number): boolean;
  succeeded(): void;
}

export interface BreakerSettings {
  offlineAfter: number;
  retryAfter: number;
}

/** The state after one more failure (shared by the in-process breaker and the primary's). */
export function afterFailure(state: { failures: number; offlineUntil: number }, settings: BreakerSettings, now: number): { failures: number; offlineUntil: number } {
  const failures = state.failures + 1;
  return { failures, offlineUntil: failures >= settings.offlineAfter ? now + settings.retryAfter : state.offlineUntil };
}

export function localBreaker(settings: BreakerSettings): CircuitBreaker {
  let state = { failures: 0, offlineUntil: 0 };
  return {
    get offlineUntil() { return state.offlineUntil; },
    get failures() { return state.failures; },
    failed(now) {
      state = afterFailure(state, settings, now);
      return state.failures >= settings.offlineAfter;
    },
    succeeded() {
      state = { failures: 0, offlineUntil: state.offlineUntil };
    },
  };
}
