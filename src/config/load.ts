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

// An unquoted ${NAME} as a whole value inside { } or [ ] (the shipped config's flow style:
// `{ port: ${PORT} }`) reads to YAML as a nested mapping and fails to parse. Such a file is read
// again with those values quoted; a file that parses as it is is never rewritten.
const bareReference = /(?<=[{[,:][ \t]*)(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}(?=[ \t]*(?:[,}\]]|#|$))/gm;

function parseYaml(text: string, file: string): unknown {
  const load = (source: string) => yaml.load(source, { filename: file, schema: yaml.CORE_SCHEMA });
  try {
    return load(text);
  } catch (error) {
    const quoted = text.replace(bareReference, '"${$1}"');
    if (quoted !== text) {
      try {
        return load(quoted);
      } catch { /* not that: report the original error */ }
    }
    const hint = text.includes('${') ? ' (a ${NAME} value inside { } or [ ] may need quotes: "${NAME}")' : '';
    throw new ConfigError('', `${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}${hint}`);
  }
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
  const tree = interpolate(parseYaml(text, file) ?? {}, env);
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return validateConfig(tree, { baseDir: process.cwd() });
  const node = tree as Record<string, unknown>;
  if (overrides.listen) {
    const [first, ...rest] = Array.isArray(node.listeners) ? node.listeners : [];
    node.listeners = [{ ...(typeof first === 'object' ? first : {}), ...parseListen(overrides.listen) }, ...rest];
  }
  if (overrides.data) node.dataDir = overrides.data;
  return validateConfig(node, { baseDir: process.cwd() });
}
