import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { duration, hostName, httpUrl, join, list, mapping, string } from './fields.js';
import type { AcmeConfig, Config } from './types.js';

// The ACME settings of a listener with tls mode acme, beside `mode` in its tls block (DESIGN.md:
// "acme (directory, email, domains)").

export const acmeKeys = ['directory', 'email', 'domains', 'challenge', 'renewBefore', 'retryAfter', 'caFile', 'externalAccountBinding'] as const;

/** Where the acme settings are in the config, for messages: the first acme listener's tls block. */
export function acmeSettingsPath(config: Config): string {
  return `listeners[${config.listeners.findIndex((listener) => listener.tls === 'acme')}].tls`;
}

interface Context {
  baseDomain: string | null;
  /** Whether a plain listener exists to answer HTTP-01 (the default challenge then). */
  hasPlainListener: boolean;
  repositoryKeys: readonly string[];
  baseDir: string;
}

function domains(value: unknown, path: string): string[] {
  const items = list(value, path);
  if (items.length === 0) throw new ConfigError(path, 'list at least one DNS name');
  return items.map((item, i) => {
    const text = string(item, join(path, i));
    if (text.startsWith('*.')) throw new ConfigError(join(path, i), 'wildcard names need the DNS-01 challenge, which Wharf does not answer: list each name');
    if (isIP(text)) throw new ConfigError(join(path, i), 'ACME certificates here are for DNS names, not IP addresses');
    return hostName(text, join(path, i));
  });
}

/** A listener's tls block in mode acme (`path` names it): where the certificate comes from and what it covers. */
export function acmeConfig(value: unknown, path: string, context: Context): AcmeConfig {
  const node = mapping(value, path, ['mode', ...acmeKeys]);
  const at = (key: string) => join(path, key);
  const challenge = node.challenge ?? (context.hasPlainListener ? 'http-01' : 'tls-alpn-01');
  if (challenge !== 'http-01' && challenge !== 'tls-alpn-01') throw new ConfigError(at('challenge'), `expected http-01 or tls-alpn-01, got ${JSON.stringify(challenge)}`);
  if (challenge === 'http-01' && !context.hasPlainListener) {
    throw new ConfigError(at('challenge'), 'http-01 is answered on a plain listener: add one on port 80 (redirectToHttps: true sends the rest to HTTPS), or use tls-alpn-01');
  }
  let chosen: string[];
  if (node.domains !== undefined) chosen = domains(node.domains, at('domains'));
  else if (context.baseDomain !== null) chosen = [context.baseDomain, ...context.repositoryKeys.map((key) => `${key}.${context.baseDomain}`)];
  else throw new ConfigError(at('domains'), 'list the DNS names to certify (or set baseDomain: it and every <repoKey>.<baseDomain> are then used)');
  const email = node.email === undefined ? null : string(node.email, at('email'));
  if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new ConfigError(at('email'), `expected an e-mail address, got ${JSON.stringify(email)}`);
  if (node.directory === undefined) throw new ConfigError(at('directory'), 'required: the ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory');
  const bindingPath = at('externalAccountBinding');
  const binding = node.externalAccountBinding === undefined ? null : mapping(node.externalAccountBinding, bindingPath, ['kid', 'hmacKey']);
  const hmacKey = binding && string(binding.hmacKey, join(bindingPath, 'hmacKey'));
  if (hmacKey !== null && !/^[A-Za-z0-9_-]+={0,2}$/.test(hmacKey)) throw new ConfigError(join(bindingPath, 'hmacKey'), 'expected the base64url HMAC key the CA gave (the value is not shown here)');
  return {
    directory: httpUrl(node.directory, at('directory')),
    email,
    challenge,
    domains: [...new Set(chosen)],
    renewBefore: node.renewBefore === undefined ? 30 * 86_400_000 : duration(node.renewBefore, at('renewBefore')),
    retryAfter: node.retryAfter === undefined ? 60_000 : Math.max(1000, duration(node.retryAfter, at('retryAfter'))),
    externalAccountBinding: binding && { kid: string(binding.kid, join(bindingPath, 'kid')), hmacKey: hmacKey! },
    caFile: node.caFile === undefined ? null : resolve(context.baseDir, string(node.caFile, at('caFile'))),
  };
}
