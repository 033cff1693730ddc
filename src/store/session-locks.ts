import { randomUUID } from 'node:crypto';
import type { Uploads } from './metadata/types.js';

// Exclusive use of an upload session while a chunk is appended or the session finishes, so two
// requests for one session never write at the same offset (on S3 the later chunk object would
// replace the earlier, and the node that hashed the earlier would commit bytes of another digest).
// Every process serving the store must see the same locks: the default is this process's; workers
// use the primary's (server/cluster); nodes sharing one PostgreSQL use the database's.

export interface SessionLocks {
  /** Takes the session's lock and resolves with its release, or with null when another request holds it. */
  tryLock(uuid: string): Promise<(() => void | Promise<void>) | null>;
}

export function localSessionLocks(): SessionLocks {
  const held = new Set<string>();
  return {
    async tryLock(uuid) {
      if (held.has(uuid)) return null;
      held.add(uuid);
      return () => { held.delete(uuid); };
    },
  };
}

/** A lock lasts this long unless its holder renews it (every third of it while it works): a node that dies frees it then. */
const leaseMs = 60_000;

/** Locks in the metadata database, for every node that shares it. */
export function databaseSessionLocks(uploads: Uploads, now: () => number): SessionLocks {
  return {
    async tryLock(uuid) {
      const holder = randomUUID();
      if (!(await uploads.lock(uuid, holder, now() + leaseMs, now()))) return null;
      const renewal = setInterval(() => { uploads.renewLock(uuid, holder, now() + leaseMs).catch(() => undefined); }, leaseMs / 3);
      renewal.unref();
      // Awaited before the answer goes out: the client's next chunk may reach another node at once.
      // If the database is gone meanwhile, the lock lapses with its lease.
      return async () => {
        clearInterval(renewal);
        await uploads.unlock(uuid, holder).catch(() => undefined);
      };
    },
  };
}
