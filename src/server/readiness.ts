import { randomUUID } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Readiness } from '../http/health.js';
import type { Store } from '../store/index.js';

// Readiness from what the store offers today: a file written, synced and removed in the data
// directory's tmp/, and a read of the metadata database. (The store's own health() can take
// this function's place: one function, one source.)

async function storageWritable(dataDir: string): Promise<string | null> {
  const probe = join(dataDir, 'tmp', `ready-${randomUUID()}`);
  try {
    const file = await open(probe, 'w');
    try {
      await file.write('ready');
      await file.sync();
    } finally {
      await file.close();
    }
    await unlink(probe);
    return null;
  } catch (error) {
    await unlink(probe).catch(() => undefined);
    return `storage is not writable (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

function databaseReachable(store: Store): string | null {
  try {
    store.metadata.upload('00000000-0000-0000-0000-000000000000');
    return null;
  } catch (error) {
    return `the metadata database does not answer (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

export function readiness(options: { store: Store; dataDir: string; servers: () => readonly Server[] }): () => Promise<Readiness> {
  return async () => {
    const servers = options.servers();
    const unbound = servers.filter((server) => !server.listening).length;
    const reasons = [
      await storageWritable(options.dataDir),
      databaseReachable(options.store),
      unbound ? `${unbound} of ${servers.length} listeners not listening` : null,
    ].filter((reason): reason is string => reason !== null);
    return { ready: reasons.length === 0, reasons };
  };
}
