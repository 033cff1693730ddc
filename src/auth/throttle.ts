import { LRUCache } from 'lru-cache';
import type { AuthConfig } from '../config/auth.js';
import { RegistryError } from '../oci/errors.js';
import type { LoginAttemptRecords } from '../store/metadata/types.js';

// Login attempts, counted per (user name, client address) and per client address within a sliding
// window. An attempt is reserved before its password is hashed, and counts as a failure unless it
// succeeds: N guesses sent at once are N attempts before the first hash ends, so no more than the
// limit are ever checked. Once a count has reached its limit, logins are refused with 429 and
// Retry-After until its oldest attempt leaves the window; refused attempts cost no hash. A user
// is not counted on its own, so guessing from one address cannot lock that user out elsewhere.

export interface ThrottleOptions {
  /** Attempts for one user name from one address. */
  perUser: number;
  perAddress: number;
  windowMs: number;
  now: () => number;
}

/** The throttle's options from auth.throttle. */
export function throttleOptions(config: AuthConfig['throttle'], now: () => number): ThrottleOptions {
  return { perUser: config.perUser, perAddress: config.perAddress, windowMs: config.window, now };
}

/** A reserved attempt: tell it when the password was right, and it no longer counts. */
export interface LoginAttempt {
  succeeded(): void | Promise<void>;
}

/**
 * Where login attempts are counted: a LoginThrottle in this process (the default); with workers
 * the primary's one throttle (server/shared-state.ts), else N workers would allow N times the
 * attempts; on PostgreSQL the database, for every node on it (sharedLoginAttempts). Throws
 * TOOMANYREQUESTS (tooManyLogins) when refused.
 */
export interface LoginAttempts {
  reserve(user: string, address: string): LoginAttempt | Promise<LoginAttempt>;
}

/**
 * The refusal of a login while its counts are at their limit, for `wait` more seconds. It names
 * no user: the name counted for an access token sent as Bearer is its owner's, which the caller
 * did not send and may not learn.
 */
export function tooManyLogins(wait: number): RegistryError {
  return new RegistryError('TOOMANYREQUESTS', {
    message: `too many failed logins with these credentials or from this address; try again in ${wait} s`,
    headers: { 'Retry-After': String(wait) },
  });
}

/** Whole seconds until `freedAt` (ms), at least 1: the Retry-After of a refusal. */
function secondsUntil(freedAt: number, now: number): number {
  return Math.max(1, Math.ceil((freedAt - now) / 1000));
}

/** Keys remembered at most (bounded memory under a flood of made-up names). */
const maxKeys = 50_000;

export class LoginThrottle implements LoginAttempts {
  readonly #options: ThrottleOptions;
  readonly #attempts = new LRUCache<string, number[]>({ max: maxKeys });

  constructor(options: ThrottleOptions) {
    this.#options = options;
  }

  #recent(key: string): number[] {
    const since = this.#options.now() - this.#options.windowMs;
    return (this.#attempts.get(key) ?? []).filter((at) => at > since);
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  #wait(key: string, limit: number): number {
    const times = this.#recent(key);
    if (times.length < limit) return 0;
    return secondsUntil(times[times.length - limit]! + this.#options.windowMs, this.#options.now());
  }

  /**
   * Counts an attempt by `user` from `address` now, before anything is awaited; throws
   * TOOMANYREQUESTS with Retry-After, counting nothing, when either count is at its limit.
   */
  reserve(user: string, address: string): LoginAttempt {
    const pair = `p:${address} ${user}`; // user names hold no space
    const single = `a:${address}`;
    const wait = Math.max(this.#wait(pair, this.#options.perUser), this.#wait(single, this.#options.perAddress));
    if (wait > 0) throw tooManyLogins(wait);
    const at = this.#options.now();
    const kept = Math.max(this.#options.perUser, this.#options.perAddress);
    for (const key of [pair, single]) this.#attempts.set(key, [...this.#recent(key).slice(-kept), at]);
    return {
      succeeded: () => {
        // Good credentials clear their pair; the address keeps its failures, less this attempt.
        this.#attempts.delete(pair);
        const times = this.#attempts.get(single);
        const index = times?.lastIndexOf(at) ?? -1;
        if (index >= 0) times!.splice(index, 1);
      },
    };
  }
}

/**
 * The throttle over records every node shares (store/metadata/login-attempts.ts: each reservation
 * is checked and counted in one step there); `options.now` gives the times of attempts.
 */
export function sharedLoginAttempts(records: LoginAttemptRecords, options: ThrottleOptions): LoginAttempts {
  return {
    async reserve(user, address) {
      const now = options.now();
      const answer = await records.reserve({ user, address, now }, options);
      if ('freedAt' in answer) throw tooManyLogins(secondsUntil(answer.freedAt, now));
      return { succeeded: () => records.succeeded({ id: answer.id, user, address }) };
    },
  };
}
