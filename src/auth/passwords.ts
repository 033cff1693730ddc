import * as crypto from 'node:crypto';
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
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

/** One-shot SHA-256 (base64): crypto.hash, without a Hash object, where Node has it (20.12+). */
const sha256: (text: string) => string = crypto.hash
  ? (text) => crypto.hash('sha256', text, 'base64')
  : (text) => createHash('sha256').update(text).digest('base64');

/** Credentials in their Basic form, as clients send them: base64 of user:password (RFC 7617). */
export function basicForm(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
}

/**
 * Passwords verified lately, so that Basic credentials on every registry request do not each
 * cost a scrypt: kept with the user and the hash they matched until they go unused for `ttlMs`,
 * under a SHA-256 of a random per-process key and their Basic form. So a registry request looks
 * its Authorization header up as sent, without decoding it, at the cost of one short hash (an
 * HMAC costs five times as much here); the digest never leaves the process, so SHA-256's length
 * extension gives nobody anything, and the key makes the table useless outside it and the lookup
 * no oracle on the password. Each use extends the entry: scrypt of the same password against the
 * same hash can only answer the same, so re-checking it would stall a steady client (100–300 ms
 * each minute) and prove nothing. What ends an entry is its hash: a changed password (a new salt,
 * so a new hash, even for the same password) or a removed user matches nothing remembered, at once.
 * Concurrent checks of the same credentials against the same hash share one scrypt: when a
 * remembered password is unknown under load, every connection sending it would otherwise start
 * its own (32 MiB and ~100 ms each).
 */
export class VerifiedPasswords {
  readonly #key = randomBytes(32).toString('base64');
  readonly #entries = new LRUCache<string, { user: string; hash: string; at: number }>({ max: 10_000 });
  /** Checks running now, by digest and hash. */
  readonly #running = new Map<string, Promise<boolean>>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #verify: typeof verifyPassword;

  constructor(options: { ttlMs: number; now: () => number; verify?: typeof verifyPassword }) {
    this.#ttlMs = options.ttlMs;
    this.#now = options.now;
    this.#verify = options.verify ?? verifyPassword;
  }

  #digest(basic: string): string {
    return sha256(`${this.#key}${basic}`);
  }

  /** Whether the entry was verified against `hash` and used within the TTL; a use extends it. */
  #fresh(entry: { hash: string; at: number }, hash: string | undefined): boolean {
    const now = this.#now();
    if (entry.hash !== hash || now - entry.at >= this.#ttlMs) return false;
    entry.at = now;
    return true;
  }

  /** The user whose credentials, in Basic form, were verified lately against the hash `hashOf` gives for them now. */
  remembers(basic: string, hashOf: (user: string) => string | undefined): string | null {
    const entry = this.#entries.get(this.#digest(basic));
    return entry !== undefined && this.#fresh(entry, hashOf(entry.user)) ? entry.user : null;
  }

  /** Whether `password` matches `hash`: remembered, or verified (and then remembered). */
  check(user: string, password: string, hash: string): Promise<boolean> {
    const digested = this.#digest(basicForm(user, password));
    const entry = this.#entries.get(digested);
    if (entry?.user === user && this.#fresh(entry, hash)) return Promise.resolve(true);
    const key = `${digested} ${hash}`;
    let running = this.#running.get(key);
    if (!running) {
      running = this.#verify(password, hash).then((ok) => {
        if (ok) this.#entries.set(digested, { user, hash, at: this.#now() });
        return ok;
      }).finally(() => this.#running.delete(key));
      this.#running.set(key, running);
    }
    return running;
  }
}
