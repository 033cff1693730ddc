import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { duration, hostName, httpUrl, join, list, mapping, string } from './fields.js';
import type { AcmeConfig } from './types.js';

interface Context {
  baseDomain: string | null;
  /** Whether a plain listener exists to answer HTTP-01 (the default challenge then). */
  hasPlainListener: boolean;
  repositoryKeys: readonly string[];
  baseDir: string;
}

function names(value: unknown, path: string): string[] {
  const items = list(value, path);
  if (items.length === 0) throw new ConfigError(path, 'list at least one DNS name');
  return items.map((item, i) => {
    const text = string(item, join(path, i));
    if (text.startsWith('*.')) throw new ConfigError(join(path, i), 'wildcard names need the DNS-01 challenge, which Wharf does not answer: list each name');
    if (isIP(text)) throw new ConfigError(join(path, i), 'ACME certificates here are for DNS names, not IP addresses');
    return hostName(text, join(path, i));
  });
}

/** The acme block: where certificates come from and which names they carry. */
export function acmeConfig(value: unknown, context: Context): AcmeConfig {
  const node = mapping(value, 'acme', ['directory', 'email', 'challenge', 'names', 'renewBefore', 'retryAfter', 'caFile', 'externalAccountBinding']);
  const challenge = node.challenge ?? (context.hasPlainListener ? 'http-01' : 'tls-alpn-01');
  if (challenge !== 'http-01' && challenge !== 'tls-alpn-01') throw new ConfigError('acme.challenge', `expected http-01 or tls-alpn-01, got ${JSON.stringify(challenge)}`);
  if (challenge === 'http-01' && !context.hasPlainListener) {
    throw new ConfigError('acme.challenge', 'http-01 is answered on a plain listener: add one on port 80 (redirectToHttps: true sends the rest to HTTPS), or use tls-alpn-01');
  }
  let chosen: string[];
  if (node.names !== undefined) chosen = names(node.names, 'acme.names');
  else if (context.baseDomain !== null) chosen = [context.baseDomain, ...context.repositoryKeys.map((key) => `${key}.${context.baseDomain}`)];
  else throw new ConfigError('acme.names', 'list the DNS names to certify (or set baseDomain: it and every <repoKey>.<baseDomain> are then used)');
  const email = node.email === undefined ? null : string(node.email, 'acme.email');
  if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new ConfigError('acme.email', `expected an e-mail address, got ${JSON.stringify(email)}`);
  if (node.directory === undefined) throw new ConfigError('acme.directory', 'required: the ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory');
  const binding = node.externalAccountBinding === undefined ? null : mapping(node.externalAccountBinding, 'acme.externalAccountBinding', ['kid', 'hmacKey']);
  const hmacKey = binding && string(binding.hmacKey, 'acme.externalAccountBinding.hmacKey');
  if (hmacKey !== null && !/^[A-Za-z0-9_-]+={0,2}$/.test(hmacKey)) throw new ConfigError('acme.externalAccountBinding.hmacKey', 'expected the base64url HMAC key the CA gave (the value is not shown here)');
  return {
    directory: httpUrl(node.directory, 'acme.directory'),
    email,
    challenge,
    names: [...new Set(chosen)],
    renewBefore: node.renewBefore === undefined ? 30 * 86_400_000 : duration(node.renewBefore, 'acme.renewBefore'),
    retryAfter: node.retryAfter === undefined ? 60_000 : Math.max(1000, duration(node.retryAfter, 'acme.retryAfter')),
    externalAccountBinding: binding && { kid: string(binding.kid, 'acme.externalAccountBinding.kid'), hmacKey: hmacKey! },
    caFile: node.caFile === undefined ? null : resolve(context.baseDir, string(node.caFile, 'acme.caFile')),
  };
}
