import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors.js';

// OCI image-spec descriptor.md: digest ::= algorithm ":" encoded. Wharf verifies the two
// registered algorithms; the encoded part is fixed-length lowercase hex for both, which also
// makes a digest safe to use as a file name.
const algorithms = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof algorithms;

const digestPattern = /^(sha256|sha512):([a-f0-9]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

export function parseDigest(value: string): ParsedDigest | null {
  const match = digestPattern.exec(value);
  if (!match) return null;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2]!;
  return hex.length === algorithms[algorithm] ? { algorithm, hex } : null;
}

export function isDigest(value: string): boolean {
  return parseDigest(value) !== null;
}

/** Parses a digest the client sent, or throws DIGEST_INVALID. */
export function requireDigest(value: string | undefined | null): ParsedDigest {
  const parsed = value ? parseDigest(value) : null;
  if (!parsed) {
    throw new RegistryError('DIGEST_INVALID', { message: `invalid digest ${JSON.stringify(value ?? '')}`, detail: { digest: value ?? null } });
  }
  return parsed;
}

export function newHasher(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
