import type { Logger } from './logger.js';

// Node prints process warnings (a deprecation, a timer that overflowed, a library's notice such as
// the AWS SDK's) to stderr itself, over several lines and with neither timestamp nor level. They
// go to the log instead: one warn line each, a warning seen before not again.

/** Replaces Node's printing of process warnings with one log line per distinct warning. */
export function logProcessWarnings(logger: Logger): void {
  for (const listener of process.listeners('warning')) process.off('warning', listener);
  const seen = new Set<string>();
  process.on('warning', (warning) => {
    const text = `${warning.name}: ${warning.message}`.replace(/\s*\n\s*/g, ' ');
    if (seen.has(text)) return;
    seen.add(text);
    logger.warn(text);
  });
}
