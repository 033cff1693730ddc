import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

// Values a client carries back but may not read (a search cursor can point past images the
// caller may not read): AES-256-GCM under a key derived from the token-signing key, so every
// node that shares that key opens what another sealed, and a restart keeps them valid.

const ivBytes = 12;
const tagBytes = 16;

export class Sealer {
  readonly #key: Buffer;

  /** `purpose` separates the keys of unrelated uses of the same signing key. */
  constructor(signingKey: KeyObject, purpose: string) {
    this.#key = Buffer.from(hkdfSync('sha256', signingKey.export({ type: 'pkcs8', format: 'der' }), Buffer.alloc(0), purpose, 32));
  }

  seal(text: string): string {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /** What was sealed, or null when `text` is not something this key sealed. */
  open(text: string): string | null {
    const bytes = Buffer.from(text, 'base64url');
    if (bytes.length < ivBytes + tagBytes) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, ivBytes));
      decipher.setAuthTag(bytes.subarray(ivBytes, ivBytes + tagBytes));
      return Buffer.concat([decipher.update(bytes.subarray(ivBytes + tagBytes)), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
