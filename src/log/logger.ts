// Wharf's log lines: every line has a timestamp and a level, as text for people or as one JSON
// object per line for log collectors (config log.format). One Logger is made at start-up and
// passed to whatever logs; nothing writes to the console on its own.
//
//   text: 2026-12-01T10:00:00.000Z warn docker-hub: upstream https://… is unreachable: ECONNREFUSED key=value …
//   json: {"time":"2026-12-01T10:00:00.000Z","level":"warn","message":"docker-hub: upstream …","key":"value"}

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  format: LogFormat;
  /** Receives each line, newline included. */
  write: (line: string) => void;
  /** The clock, for tests. */
  now?: () => Date;
}

/** A text field value: bare when it is one plain word, JSON-quoted otherwise. */
export function textValue(value: string | number | boolean | null): string {
  const text = String(value);
  return /^[\w.:/@+-]+$/.test(text) ? text : JSON.stringify(text);
}

/** One log line, newline included. Fields that are undefined are left out. */
export function formatLine(format: LogFormat, level: LogLevel, message: string, fields: LogFields = {}, time: Date = new Date()): string {
  const present = Object.entries(fields).filter((entry): entry is [string, string | number | boolean | null] => entry[1] !== undefined);
  if (format === 'json') return `${JSON.stringify({ time: time.toISOString(), level, message, ...Object.fromEntries(present) })}\n`;
  const extra = present.map(([key, value]) => ` ${key}=${textValue(value)}`).join('');
  // A message is one line: a stack trace or a multi-line upstream answer must not forge lines.
  return `${time.toISOString()} ${level} ${message.replace(/\r?\n/g, '\\n')}${extra}\n`;
}

export function createLogger(options: LoggerOptions): Logger {
  const now = options.now ?? (() => new Date());
  const line = (level: LogLevel) => (message: string, fields?: LogFields) => options.write(formatLine(options.format, level, message, fields, now()));
  return { info: line('info'), warn: line('warn'), error: line('error') };
}
