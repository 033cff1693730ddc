import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Access tokens (`wharf token create`): `wharf_<id>_<secret>`. The id finds the stored record;
// only a SHA-256 of the 256-bit random secret is stored (a secret that strong needs no slow hash).

const pattern = /^wharf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewAccessToken {
  id: string;
  /** Shown once, never stored. */
  token: string;
  secretHash: string;
}

export function newAccessToken(): NewAccessToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `wharf_${id}_${secret}`, secretHash: hashSecret(secret) };
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The id and secret of something shaped like an access token, or null. */
export function parseAccessToken(text: string): { id: string; secret: string } | null {
  const match = pattern.exec(text);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

export function secretMatches(secret: string, secretHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(secretHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
