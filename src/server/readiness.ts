import type { Server } from 'node:http';
import type { Readiness } from '../http/health.js';
import type { Store } from '../store/index.js';

// Readiness: the store's own health (free space, a write probe, the metadata database answering)
// and every listener bound.

export function readiness(options: { store: Store; servers: () => readonly Server[] }): () => Promise<Readiness> {
  return async () => {
    const servers = options.servers();
    const unbound = servers.filter((server) => !server.listening).length;
    const storage = await options.store.health();
    const reasons = [
      storage.writable ? null : storage.reason ?? 'storage is not writable',
      unbound ? `${unbound} of ${servers.length} listeners not listening` : null,
    ].filter((reason): reason is string => reason !== null);
    return { ready: reasons.length === 0, reasons };
  };
}
