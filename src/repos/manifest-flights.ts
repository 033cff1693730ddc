// Concurrent fetches of one manifest across the processes serving one store (workers): one
// process asks the upstream, the others wait for it to end, then read what it cached (and ask the
// upstream themselves when it cached nothing). Within a process, RemoteRepository's own map joins
// them first. The default is none (one process); workers use the primary's
// (server/manifest-flights.ts); several nodes would supply their own.

/** A fetch this process leads (it says when it has `ended`), or one another process leads. */
export type ManifestFlight = { lead: true; ended(): void } | { lead: false; ended: Promise<void> };

export interface ManifestFlights {
  /** Leads the fetch named `key`, or follows the one another process leads. */
  take(key: string): Promise<ManifestFlight>;
}
