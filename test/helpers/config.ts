import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { tempDir } from './server.js';

/** Writes YAML to a fresh wharf.yaml and returns its path. */
export async function configFile(text: string): Promise<string> {
  const file = join(await tempDir('wharf-config-'), 'wharf.yaml');
  await writeFile(file, text);
  return file;
}

/** The one message a config is refused with (it must be refused, with a ConfigError). */
export async function problem(text: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    loadConfig(await configFile(text), {}, env);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}
