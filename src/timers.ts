// Timers that code under test takes as a parameter, so tests can run them with a manual clock.

/** Runs `run` after `ms`, not keeping the process alive for it; returns what cancels it. */
export type SetTimer = (ms: number, run: () => void) => () => void;

export const systemTimer: SetTimer = (ms, run) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => clearTimeout(timer);
};
