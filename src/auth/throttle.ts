import { LRUCache } from 'lru-cache';
import { RegistryError } from '../oci/errors.js';

// Failed logins, counted per user name and per client address within a sliding window. Once
// either has reached its limit, logins for it are refused with 429 and Retry-After until the
// oldest counted failure leaves the window: password guessing gets a few tries per window, and
// refused attempts cost no password hash. A successful login clears its user's count.

export interface ThrottleOptions {
  perUser: number;
  perAddress: number;
  windowMs: number;
  now: () => number;
}

/** Keys remembered at most (bounded memory under a flood of made-up names). */
const maxKeys = 50_000;

export class LoginThrottle {
  readonly #options: ThrottleOptions;
  readonly #failures = new LRUCache<string, number[]>({ max: maxKeys });

  constructor(options: ThrottleOptions) {
    this.#options = options;
  }

  #recent(key: string): number[] {
    const since = this.#options.now() - this.#options.windowMs;
    const times = (this.#failures.get(key) ?? []).filter((at) => at > since);
    return times;
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  #wait(key: string, limit: number): number {
    const times = this.#recent(key);
    if (times.length < limit) return 0;
    const freedAt = times[times.length - limit]! + this.#options.windowMs;
    return Math.max(1, Math.ceil((freedAt - this.#options.now()) / 1000));
  }

  /** Throws TOOMANYREQUESTS with Retry-After when the user or the address has failed too often. */
  check(user: string | null, address: string): void {
    const wait = Math.max(user === null ? 0 : this.#wait(`u:${user}`, this.#options.perUser), this.#wait(`a:${address}`, this.#options.perAddress));
    if (wait > 0) {
      throw new RegistryError('TOOMANYREQUESTS', {
        message: `too many failed logins${user === null ? '' : ` for ${user} or`} from this address; try again in ${wait} s`,
        headers: { 'Retry-After': String(wait) },
      });
    }
  }

  failed(user: string | null, address: string): void {
    const now = this.#options.now();
    const keys = user === null ? [`a:${address}`] : [`u:${user}`, `a:${address}`];
    for (const key of keys) this.#failures.set(key, [...this.#recent(key).slice(-Math.max(this.#options.perUser, this.#options.perAddress)), now]);
  }

  succeeded(user: string): void {
    this.#failures.delete(`u:${user}`);
  }
}
