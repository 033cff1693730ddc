// Collects log output (access log chunks or operational lines) and lets a test wait for a line as
// it is written, rather than sleeping for a flush.

/** A line holding this text, matching this expression, or passing this test. */
export type Match = RegExp | string | ((line: string) => boolean);

export interface LogCollector {
  /** Takes text holding one or more whole lines (a newline at the end optional). */
  write: (text: string) => void;
  /** Takes a chunk of a stream: lines are taken as they complete. */
  chunk: (text: string) => void;
  lines: string[];
  /** The first line that matches, now or when it is written (at most `ms` later; default 30 s). */
  waitFor(match: Match, ms?: number): Promise<string>;
}

export function logCollector(): LogCollector {
  const lines: string[] = [];
  const waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void }>();
  const matcher = (match: Match) => (line: string) => (typeof match === 'string' ? line.includes(match) : typeof match === 'function' ? match(line) : match.test(line));
  let partial = '';
  const collector: LogCollector = {
    lines,
    chunk(text) {
      const whole = partial + text;
      const end = whole.lastIndexOf('\n') + 1;
      partial = whole.slice(end);
      if (end > 0) collector.write(whole.slice(0, end));
    },
    write(text) {
      for (const line of text.split('\n').filter(Boolean)) {
        lines.push(line);
        for (const waiter of waiters) {
          if (!waiter.test(line)) continue;
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    },
    waitFor(match, ms = 30_000) {
      const test = matcher(match);
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no log line matching ${String(match)} within ${ms} ms; lines:\n${lines.join('\n')}`));
        }, ms);
        const waiter = { test, resolve: (line: string) => { clearTimeout(timer); resolve(line); } };
        waiters.add(waiter);
      });
    },
  };
  return collector;
}
