import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { ConfigError } from './errors.js';
import { interpolate } from './interpolate.js';
import { validateConfig } from './validate.js';
import type { Config } from './types.js';

export interface Overrides {
  /** Replaces the first listener: "ADDR:PORT" (or "[v6]:PORT"). */
  listen?: string;
  /** Replaces dataDir. */
  data?: string;
}

function parseListen(value: string): { address: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new ConfigError('--listen', `expected ADDR:PORT, got ${JSON.stringify(value)}`);
  return { address: match[1] ?? (match[2] || '127.0.0.1'), port };
}

/**
 * Reads, interpolates and validates a YAML config file, then applies command-line overrides.
 * Relative paths in it are relative to the working directory, like every other CLI path.
 */
export function loadConfig(file: string, overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('--config', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let raw: unknown;
  try {
    raw = yaml.load(text, { filename: file, schema: yaml.CORE_SCHEMA });
  } catch (error) {
    throw new ConfigError('', `${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const tree = interpolate(raw ?? {}, env);
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return validateConfig(tree, { baseDir: process.cwd() });
  const node = tree as Record<string, unknown>;
  if (overrides.listen) {
    const [first, ...rest] = Array.isArray(node.listeners) ? node.listeners : [];
    node.listeners = [{ ...(typeof first === 'object' ? first : {}), ...parseListen(overrides.listen) }, ...rest];
  }
  if (overrides.data) node.dataDir = overrides.data;
  return validateConfig(node, { baseDir: process.cwd() });
}
