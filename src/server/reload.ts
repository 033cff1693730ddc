import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';

// What a configuration reload (SIGHUP) changes. The paths that differ are listed by key, never by
// value (a password may be one of them); those that bind sockets or locate data wait for a restart.

/**
 * Settings a running server cannot take over: listeners and what they bind, where data lives, the
 * log's shape, how access control authenticates (its permission targets do change on reload).
 */
const restartOnly = ['listeners', 'acme', 'dataDir', 'certsDir', 'storage', 'gc', 'metrics', 'log.format', 'auth', 'workers', 'downloads'];

/** Typed paths whose key in the configuration file is another: the log names what the operator wrote. */
const fileKeys: Readonly<Record<string, string>> = { 'gc.uploadsExpireAfter': 'uploads.expireAfter' };

export interface ReloadReport {
  /** Key paths now in effect. */
  applied: string[];
  /** Key paths that differ but keep their old value until a restart. */
  needsRestart: string[];
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The key paths where two configurations differ: down to mappings' leaves; a list counts as one value. */
export function changedPaths(before: unknown, after: unknown, path = ''): string[] {
  if (isMapping(before) && isMapping(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((key) => changedPaths(before[key], after[key], path ? `${path}.${key}` : key));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
}

export function classify(before: Config, after: Config): ReloadReport {
  const changed = changedPaths(before, after);
  const named = (paths: string[]) => paths.map((path) => fileKeys[path] ?? path);
  const waits = (path: string) => restartOnly.some((prefix) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`));
  return { applied: named(changed.filter((path) => !waits(path))), needsRestart: named(changed.filter(waits)) };
}

/** The configuration in effect after a reload: `after`, except what waits for a restart. */
export function inEffect(before: Config, after: Config): Config {
  const result: Record<string, unknown> = { ...after };
  const old = before as unknown as Record<string, Record<string, unknown> | undefined>;
  for (const path of restartOnly) {
    const [top, sub] = path.split('.') as [string, string | undefined];
    result[top] = sub === undefined ? old[top] : { ...(result[top] as Record<string, unknown>), [sub]: old[top]?.[sub] };
  }
  return result as unknown as Config;
}

/** Says what a reload changed: once per server (with workers, the primary's, once every worker has it). */
export function logReload(logger: Logger, report: ReloadReport): void {
  logger.info(report.applied.length ? `reload: applied ${report.applied.join(', ')}` : 'reload: no configuration change to apply; certificates re-read');
  if (report.needsRestart.length) logger.warn(`reload: ${report.needsRestart.join(', ')} changed, which needs a restart; the old value stays in effect until then`);
}
