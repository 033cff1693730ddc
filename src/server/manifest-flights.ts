import type { ManifestFlight, ManifestFlights } from '../repos/manifest-flights.js';
import type { PrimaryHub, WorkerChannel, WorkerLink } from './ipc.js';

// Which worker fetches each manifest (repos/manifest-flights.ts), over the IPC channel. As with
// blob fills (fill-claims.ts) the primary numbers each fetch and the leader's note names its
// number; a follower needs no progress, only the end, which it asks for by number: answered when
// that fetch ends, or at once when it has ended already.

type TakeAnswer = { lead: boolean; flight: number };

/** The primary's side. `forget` ends what a worker that stopped was fetching. */
export function serveManifestFlights<Worker extends WorkerLink>(hub: PrimaryHub<Worker>): { forget(worker: Worker): void } {
  const flights = new Map<string, { number: number; leader: Worker; waiting: (() => void)[] }>();
  let next = 0;
  const end = (key: string) => {
    for (const answer of flights.get(key)?.waiting ?? []) answer();
    flights.delete(key);
  };
  hub.answer('manifest.take', (body, worker) => {
    const { key } = body as { key: string };
    const flight = flights.get(key);
    if (flight) return { lead: false, flight: flight.number } satisfies TakeAnswer;
    flights.set(key, { number: ++next, leader: worker, waiting: [] });
    return { lead: true, flight: next } satisfies TakeAnswer;
  });
  hub.answer('manifest.wait', (body) => {
    const { key, flight: number } = body as { key: string; flight: number };
    const flight = flights.get(key);
    return flight?.number === number ? new Promise<null>((resolve) => flight.waiting.push(() => resolve(null))) : null;
  });
  hub.hear('manifest.ended', (body, worker) => {
    const { key, flight: number } = body as { key: string; flight: number };
    const flight = flights.get(key);
    if (flight?.number === number && flight.leader === worker) end(key);
  });
  return {
    forget(worker) {
      for (const [key, flight] of flights) if (flight.leader === worker) end(key);
    },
  };
}

/** A worker's side. */
export function workerManifestFlights(channel: WorkerChannel): ManifestFlights {
  return {
    async take(key) {
      const { lead, flight } = await channel.request<TakeAnswer>('manifest.take', { key });
      if (lead) return { lead: true, ended: () => channel.tell('manifest.ended', { key, flight }) } satisfies ManifestFlight;
      return { lead: false, ended: channel.request<null>('manifest.wait', { key, flight }).then(() => undefined) };
    },
  };
}
