import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPassword } from './passwords.js';

// First start: with no user at all, an `admin` with a random password, written to
// <dataDir>/initial-admin-password (owner-only) for the operator to read once.

export interface UserCreator {
  addUser(user: { name: string; passwordHash: string; groups: string[]; admin: boolean; createdAt: number; updatedAt: number; passwordChangedAt: number }): Promise<boolean>;
}

export const initialPasswordFile = 'initial-admin-password';

/** Creates the first admin; returns its password and the file holding it, or null if a user was added meanwhile. */
export async function createInitialAdmin(store: UserCreator, dataDir: string, now: number): Promise<{ password: string; file: string } | null> {
  const password = randomBytes(18).toString('base64url');
  const added = await store.addUser({ name: 'admin', passwordHash: await hashPassword(password), groups: [], admin: true, createdAt: now, updatedAt: now, passwordChangedAt: now });
  if (!added) return null;
  const file = join(dataDir, initialPasswordFile);
  await rm(file, { force: true }); // an older file may have another mode: never write into it
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return { password, file };
}
