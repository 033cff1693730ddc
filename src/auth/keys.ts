import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { prepareDirectory } from '../config/directories.js';

// The key that signs bearer tokens: ECDSA P-256 (ES256, the algorithm Distribution's token auth
// verifies too), made on first start and kept in certsDir, readable by the owner only.

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** JWK thumbprint of the public key, sent as the JWT `kid`. */
  kid: string;
}

export const signingKeyFile = 'token-signing.key';

async function readOrCreate(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  try {
    // wx: two processes starting at once keep one key, the first one written.
    await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    return pem;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFile(path, 'utf8');
  }
}

export async function loadSigningKey(certsDir: string): Promise<SigningKey> {
  await prepareDirectory(certsDir, 'certsDir');
  const privateKey = createPrivateKey(await readOrCreate(join(certsDir, signingKeyFile)));
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: await calculateJwkThumbprint(await exportJWK(publicKey)) };
}
