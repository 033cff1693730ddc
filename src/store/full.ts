import { RegistryError } from '../oci/errors.js';

// A full disk (ENOSPC, EDQUOT), a full SQLite database (SQLITE_FULL), PostgreSQL's disk_full
// (SQLSTATE 53100) or an object store over its quota (Ceph RGW QuotaExceeded, MinIO XMinioStorageFull) is the operator's problem, not the
// client's and not an internal error: it answers 507 STORAGE_FULL and is logged once per
// occurrence, without paths. Writes fail before anything is committed, so nothing half-written
// is ever served, and they succeed again once space is freed.

const fullCodes = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100', 'QuotaExceeded', 'XMinioStorageFull', 'StorageFull']);

function codeOf(error: unknown): string | undefined {
  const value = error as { code?: unknown; name?: unknown; Code?: unknown } | null;
  for (const candidate of [value?.code, value?.Code, value?.name]) if (typeof candidate === 'string' && fullCodes.has(candidate)) return candidate;
  return undefined;
}

/** The error to throw for a failed write: STORAGE_FULL when storage is full (logged), else the error itself. */
export function storageFailure(error: unknown, log: (message: string) => void): unknown {
  if (error instanceof RegistryError) return error;
  const code = codeOf(error);
  if (!code) return error;
  log(`storage is full (${code}): a write was refused; pushes succeed again once space is freed`);
  return new RegistryError('STORAGE_FULL', { detail: { reason: code } });
}
