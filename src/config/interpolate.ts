import { ConfigError } from './errors.js';
import { join } from './fields.js';

// `${NAME}` in any string value is replaced by that environment variable, so secrets stay out of
// the file. `$${` escapes a literal `${`. A variable that is not set is an error naming the key,
// and so is any other `${` (unterminated, `${X:-default}`, `${a-b}`): a typo in a secret must not
// become the secret. The message does not repeat the value, which may be most of a secret.
const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{/g;

export function interpolate(value: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(reference, (whole, name: string | undefined) => {
      if (whole === '$${') return '${';
      if (name === undefined) throw new ConfigError(path, 'unsupported ${…} reference: write ${NAME} (letters, digits and _, no default values), or $${ for a literal ${');
      const substitute = env[name];
      if (substitute === undefined) throw new ConfigError(path, `environment variable ${name} is not set`);
      return substitute;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, join(path, i)));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env, join(path, key))]));
  }
  return value;
}
