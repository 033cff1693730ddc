import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { LRUCache } from 'lru-cache';

// Password hashes: scrypt with a random per-user salt, stored with its parameters so they can be
// raised later without invalidating existing hashes:
//   scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>
// N = 2^15 (32 MiB, ~100 ms here) is above Django's scrypt default (2^14).

const defaults = { N: 2 ** 15, r: 8, p: 1 };
const keyLength = 32;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + (1 << 20) };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, defaults);
  return ['scrypt', defaults.N, defaults.r, defaults.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** A hash no password matches, verified for unknown users so that they take as long as known ones. */
export const unusableHash = `scrypt$${defaults.N}$${defaults.r}$${defaults.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(keyLength).toString('base64')}`;

/** Constant-time check of a password against a stored hash; false for any malformed hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, N, r, p, salt, hash] = encoded.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const params = { N: Number(N), r: Number(r), p: Number(p) };
  if (![params.N, params.r, params.p].every((n) => Number.isSafeInteger(n) && n > 0)) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await derive(password, Buffer.from(salt, 'base64'), params);
  return expected.length === actual.length && timingSafeEqual(expected, actual) && encoded !== unusableHash;
}

/**
 * Passwords verified lately, so that Basic credentials on every registry request do not each
 * cost a scrypt: kept under an HMAC of user and password (a random key per process, so the table
 * is useless outside it), with the hash they matched, until they go unused for `ttlMs`. Each use
 * extends the entry: scrypt of the same password against the same hash can only answer the same,
 * so re-checking it would stall a steady client (100–300 ms each minute) and prove nothing. What
 * ends an entry is its hash: a changed password (a new salt, so a new hash, even for the same
 * password) or a removed user matches nothing remembered, at once.
 * Concurrent checks of the same credentials against the same hash share one scrypt: when a
 * remembered password is unknown under load, every connection sending it would otherwise start
 * its own (32 MiB and ~100 ms each).
 */
export class VerifiedPasswords {
  readonly #key = randomBytes(32);
  readonly #entries = new LRUCache<string, { hash: string; at: number }>({ max: 10_000 });
  /** Checks running now, by MAC and hash. */
  readonly #running = new Map<string, Promise<boolean>>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #verify: typeof verifyPassword;

  constructor(options: { ttlMs: number; now: () => number; verify?: typeof verifyPassword }) {
    this.#ttlMs = options.ttlMs;
    this.#now = options.now;
    this.#verify = options.verify ?? verifyPassword;
  }

  #mac(user: string, password: string): string {
    return createHmac('sha256', this.#key).update(`${user}\u0000${password}`).digest('base64');
  }

  /** Whether the MAC was verified against `hash` and used within the TTL; a use extends it. */
  #remembered(mac: string, hash: string): boolean {
    const entry = this.#entries.get(mac);
    const now = this.#now();
    if (entry === undefined || entry.hash !== hash || now - entry.at >= this.#ttlMs) return false;
    entry.at = now;
    return true;
  }

  remembers(user: string, password: string, hash: string): boolean {
    return this.#remembered(this.#mac(user, password), hash);
  }

  /** Whether `password` matches `hash`: remembered, or verified (and then remembered). */
  check(user: string, password: string, hash: string): Promise<boolean> {
    const mac = this.#mac(user, password);
    if (this.#remembered(mac, hash)) return Promise.resolve(true);
    const key = `${mac} ${hash}`;
    let running = this.#running.get(key);
    if (!running) {
      running = this.#verify(password, hash).then((ok) => {
        if (ok) this.#entries.set(mac, { hash, at: this.#now() });
        return ok;
      }).finally(() => this.#running.delete(key));
      this.#running.set(key, running);
    }
    return running;
  }
}
