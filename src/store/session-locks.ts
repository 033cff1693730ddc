// Exclusive use of an upload session while a chunk is appended or the session finishes, so two
// requests for one session never write at the same offset. Every process serving the store must
// see the same locks: the default is this process's; workers use the primary's (server/cluster),
// and a multi-node deployment would supply one over its shared database.

export interface SessionLocks {
  /** Takes the session's lock and resolves with its release, or with null when another request holds it. */
  tryLock(uuid: string): Promise<(() => void) | null>;
}

export function localSessionLocks(): SessionLocks {
  const held = new Set<string>();
  return {
    async tryLock(uuid) {
      if (held.has(uuid)) return null;
      held.add(uuid);
      return () => held.delete(uuid);
    },
  };
}
