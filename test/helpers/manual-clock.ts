import type { AcmeClock } from '../../src/tls/acme.js';

// A clock that moves only when the test moves it: its timers run, in order of their due time,
// inside advance(). A test then says when something happens, rather than waiting to see.

export interface ManualClock extends AcmeClock {
  /** Moves the clock `ms` on, running every timer due by then (those they set included). */
  advance(ms: number): void;
  /** When the next timer is due, or null when none is set. */
  nextDue(): number | null;
}

interface Timer {
  due: number;
  run: () => void;
}

export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  const timers = new Set<Timer>();
  const earliest = () => [...timers].reduce<Timer | undefined>((first, timer) => (first && first.due <= timer.due ? first : timer), undefined);
  return {
    now: () => now,
    setTimer(ms, run) {
      const timer = { due: now + Math.max(0, ms), run };
      timers.add(timer);
      return () => { timers.delete(timer); };
    },
    advance(ms) {
      const target = now + ms;
      for (let timer = earliest(); timer && timer.due <= target; timer = earliest()) {
        timers.delete(timer);
        now = timer.due;
        timer.run();
      }
      now = target;
    },
    nextDue: () => earliest()?.due ?? null,
  };
}
