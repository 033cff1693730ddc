import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

// Small typed readers over the parsed YAML tree. Each takes the key path for its error message.

export type Node = Record<string, unknown>;

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${String(value)}`;
}

export function mapping(value: unknown, path: string, allowedKeys: readonly string[]): Node {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(path, `expected a mapping, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowedKeys.includes(key)) {
      throw new ConfigError(join(path, key), `unknown key (allowed here: ${allowedKeys.join(', ')})`);
    }
  }
  return value as Node;
}

export function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(path, `expected a list, got ${describe(value)}`);
  return value;
}

export function string(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(path, `expected a non-empty string, got ${describe(value)}`);
  return value;
}

/** A whole number given as text (a value from \${ENV} is always text) as that number; anything else as it is. */
export function fromDigits(value: unknown): unknown {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
}

export function port(value: unknown, path: string): number {
  const number = fromDigits(value);
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 65535) {
    throw new ConfigError(path, `expected a port number 0-65535, got ${describe(value)}`);
  }
  return number;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: a number of seconds, or "500ms", "30s", "10m", "1h", "7d". Returns milliseconds. */
export function duration(value: unknown, path: string): number {
  if (typeof value === 'number' && value >= 0) return value * 1000;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim()) : null;
  if (!match) throw new ConfigError(path, `expected a duration like 30s, 10m or 1h, got ${describe(value)}`);
  return Number(match[1]) * durationUnits[match[2]!]!;
}

// Node's timers hold at most 2^31-1 ms (24.8 days); a longer one fires after 1 ms instead.
const maxTimerMs = 24 * 86_400_000;

/** A duration that ends up in a timer: at most 24d. */
export function timerDuration(value: unknown, path: string): number {
  const ms = duration(value, path);
  if (ms > maxTimerMs) throw new ConfigError(path, `at most 24d (Node's timers hold no longer), got ${describe(value)}`);
  return ms;
}

export function positiveInteger(value: unknown, path: string): number {
  const number = fromDigits(value);
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1) throw new ConfigError(path, `expected a whole number of at least 1, got ${describe(value)}`);
  return number;
}

export function httpUrl(value: unknown, path: string): string {
  const text = string(value, path);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(path, `expected an http or https URL, got ${describe(value)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(path, `expected an http or https URL, got ${describe(value)}`);
  if (url.search || url.hash || url.username) throw new ConfigError(path, 'the URL takes no query, fragment or credentials (use username and password)');
  return text.replace(/\/+$/, '');
}

const dnsNamePattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** A DNS host name like registry.example.com, lowercased (RFC 1035 lengths: 63 per label, 253 in all). */
export function hostName(value: unknown, path: string): string {
  const text = string(value, path).toLowerCase();
  if (text.length > 253) throw new ConfigError(path, `a DNS name is at most 253 characters; this one has ${text.length}`);
  const long = text.split('.').find((label) => label.length > 63);
  if (long) throw new ConfigError(path, `each dot-separated part of a DNS name is at most 63 characters; ${JSON.stringify(long.slice(0, 20))}… has ${long.length}`);
  if (!dnsNamePattern.test(text) || /^[\d.]+$/.test(text)) throw new ConfigError(path, `expected a DNS name like registry.example.com, got ${describe(value)}`);
  return text;
}

/** A listener's address: an IPv4 or IPv6 address, or a host name this machine resolves. */
export function bindAddress(value: unknown, path: string): string {
  const text = string(value, path);
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare)) return bare;
  const expected = 'expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name';
  if (/^[\d.]+$/.test(text) || bare.includes(':')) throw new ConfigError(path, `${expected}, got ${describe(value)}: not a valid IP address`);
  try {
    return hostName(text, path);
  } catch {
    throw new ConfigError(path, `${expected}, got ${describe(value)}`);
  }
}

/** Environment variables arrive as text: "true" and "false" from ${VAR} count as booleans. */
export function boolean(value: unknown, path: string): boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  if (typeof value !== 'boolean') throw new ConfigError(path, `expected true or false, got ${describe(value)}`);
  return value;
}

const sizeUnits: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** A size: a number of bytes, or "512MiB", "50GiB", "10GB". Returns bytes. */
export function byteSize(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/.exec(value.trim()) : null;
  if (!match) throw new ConfigError(path, `expected a size like 512MiB or 50GiB, got ${describe(value)}`);
  return Math.floor(Number(match[1]) * sizeUnits[match[2]!]!);
}

/** `timeouts: { connect, response }`: durations (timers: at most 24d), 10 s and 60 s unless given. */
export function timeouts(value: unknown, path: string): { connect: number; response: number } {
  const node = value === undefined ? {} : mapping(value, path, ['connect', 'response']);
  return {
    connect: node.connect === undefined ? 10_000 : timerDuration(node.connect, join(path, 'connect')),
    response: node.response === undefined ? 60_000 : timerDuration(node.response, join(path, 'response')),
  };
}
