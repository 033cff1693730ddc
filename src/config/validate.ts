import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { isValidRepositoryKey, maxRepositoryKeyLength } from '../oci/names.js';
import { acmeConfig, acmeKeys } from './acme.js';
import { authConfig, permissionsConfig, reservedRepositoryKeys } from './auth.js';
import { ConfigError } from './errors.js';
import { collectorConfig, storageConfig, storageKeys } from './storage.js';
import { servingConfig, servingKeys } from './serving.js';
import { bindAddress, boolean, byteSize, describe, duration, fromDigits, hostName, httpUrl, join, list, mapping, port, positiveInteger, string, timeouts, type Node } from './fields.js';
import { checkVirtualRepositories, virtualRepository } from './virtual.js';
import type { AcmeConfig, Config, ListenerConfig, RemoteRepositoryConfig, RepositoryConfig } from './types.js';

export const defaultListener: ListenerConfig = { address: '127.0.0.1', port: 5000, tls: 'none', certificates: [], repository: null, mirrors: null, redirectToHttps: false };

/** A listener's mirrors: upstream registry names (docker.io, ghcr.io, localhost:5000) → repository keys, checked later. */
function mirrors(value: unknown, path: string): Record<string, string> {
  const node = mapping(value, path, Object.keys(value ?? {}));
  const entries = Object.entries(node).map(([upstream, key]) => {
    const [host, port, ...rest] = upstream.split(':');
    if (rest.length || (port !== undefined && !/^\d{1,5}$/.test(port))) throw new ConfigError(join(path, upstream), 'expected a registry name like docker.io or ghcr.io (host[:port])');
    hostName(host, join(path, upstream));
    return [upstream.toLowerCase(), string(key, join(path, upstream))] as const;
  });
  if (entries.length === 0) throw new ConfigError(path, 'map at least one upstream registry to a remote repository, e.g. { docker.io: docker-hub }');
  return Object.fromEntries(entries);
}

const tlsModes = ['none', 'self-signed', 'files', 'acme'] as const;

function certificates(value: unknown, path: string, baseDir: string): { cert: string; key: string }[] {
  const items = list(value, path);
  if (items.length === 0) throw new ConfigError(path, 'files mode needs at least one { cert, key } pair');
  return items.map((item, i) => {
    const pair = mapping(item, join(path, i), ['cert', 'key']);
    return { cert: resolve(baseDir, string(pair.cert, join(join(path, i), 'cert'))), key: resolve(baseDir, string(pair.key, join(join(path, i), 'key'))) };
  });
}

/** A listener that serves every repository by subdomain and path: no port binding, no mirrors, no redirect. */
export function servesByPath(listener: ListenerConfig): boolean {
  return listener.repository === null && listener.mirrors === null && !listener.redirectToHttps;
}

function listener(value: unknown, path: string, baseDir: string): ListenerConfig {
  const node = mapping(value, path, ['address', 'port', 'tls', 'repository', 'mirrors', 'redirectToHttps']);
  if (node.repository !== undefined && node.mirrors !== undefined) throw new ConfigError(join(path, 'mirrors'), 'a listener is bound to one repository or mirrors several, not both');
  let tls: ListenerConfig['tls'] = 'none';
  let pairs: { cert: string; key: string }[] = [];
  if (node.tls !== undefined) {
    const tlsPath = join(path, 'tls');
    const tlsNode = mapping(node.tls, tlsPath, ['mode', 'certificates', ...acmeKeys]);
    if (!tlsModes.includes(tlsNode.mode as ListenerConfig['tls'])) {
      throw new ConfigError(join(tlsPath, 'mode'), `expected one of ${tlsModes.join(', ')}, got ${JSON.stringify(tlsNode.mode ?? null)}`);
    }
    tls = tlsNode.mode as ListenerConfig['tls'];
    if (tls === 'files') pairs = certificates(tlsNode.certificates, join(tlsPath, 'certificates'), baseDir);
    else if (tlsNode.certificates !== undefined) throw new ConfigError(join(tlsPath, 'certificates'), 'only used with mode: files');
    const stray = acmeKeys.find((key) => tlsNode[key] !== undefined);
    if (tls !== 'acme' && stray) throw new ConfigError(join(tlsPath, stray), 'only used with mode: acme');
  }
  return {
    address: node.address === undefined ? defaultListener.address : bindAddress(node.address, join(path, 'address')),
    port: port(node.port, join(path, 'port')),
    tls,
    certificates: pairs,
    repository: node.repository === undefined ? null : string(node.repository, join(path, 'repository')),
    mirrors: node.mirrors === undefined ? null : mirrors(node.mirrors, join(path, 'mirrors')),
    redirectToHttps: node.redirectToHttps === undefined ? false : boolean(node.redirectToHttps, join(path, 'redirectToHttps')),
  };
}

function remote(value: unknown, path: string): RemoteRepositoryConfig {
  const node = mapping(value, path, ['type', 'url', 'username', 'password', 'metadataTtl', 'serveStale', 'offlineAfter', 'retryAfter', 'timeouts', 'cache', 'foreignLayers']);
  const at = (key: string) => join(path, key);
  const optional = <T>(key: string, read: (v: unknown, p: string) => T, fallback: T): T => (node[key] === undefined ? fallback : read(node[key], at(key)));
  const cache = node.cache === undefined ? {} : mapping(node.cache, at('cache'), ['maxSize']);
  const foreign = node.foreignLayers === undefined ? {} : mapping(node.foreignLayers, at('foreignLayers'), ['cache', 'allow']);
  const allowPath = join(at('foreignLayers'), 'allow');
  const username = optional('username', string, null);
  const password = optional('password', string, null);
  if ((username === null) !== (password === null)) throw new ConfigError(at(username === null ? 'username' : 'password'), 'username and password go together');
  return {
    type: 'remote',
    url: httpUrl(node.url, at('url')),
    username,
    password,
    metadataTtl: optional('metadataTtl', duration, 10 * 60_000),
    serveStale: optional('serveStale', boolean, true),
    offlineAfter: optional('offlineAfter', positiveInteger, 3),
    retryAfter: optional('retryAfter', duration, 30_000),
    timeouts: timeouts(node.timeouts, at('timeouts')),
    cache: { maxSize: cache.maxSize === undefined ? null : byteSize(cache.maxSize, join(at('cache'), 'maxSize')) },
    foreignLayers: {
      cache: foreign.cache === undefined ? false : boolean(foreign.cache, join(at('foreignLayers'), 'cache')),
      allow: foreign.allow === undefined ? ['**'] : list(foreign.allow, allowPath).map((pattern, i) => string(pattern, join(allowPath, i))),
    },
  };
}

function repository(value: unknown, path: string): RepositoryConfig {
  const type = (value as Node | null)?.type;
  if (type === undefined || type === null) throw new ConfigError(join(path, 'type'), 'required: local, remote or virtual');
  if (type === 'remote') return remote(value, path);
  if (type === 'virtual') return virtualRepository(value, path);
  if (type !== 'local') throw new ConfigError(join(path, 'type'), `expected local, remote or virtual, got ${describe(type)}`);
  const node = mapping(value, path, ['type', 'blockSchema1', 'gc', 'maxUniqueTags', 'platformTags']);
  const gc = node.gc === undefined ? {} : mapping(node.gc, join(path, 'gc'), ['untagged']);
  const untagged = gc.untagged ?? 'delete';
  if (untagged !== 'delete' && untagged !== 'keep') throw new ConfigError(join(join(path, 'gc'), 'untagged'), `expected delete or keep, got ${describe(untagged)}`);
  const limit = fromDigits(node.maxUniqueTags ?? 0);
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw new ConfigError(join(path, 'maxUniqueTags'), `expected a whole number of tags per image, 0 for no limit, got ${describe(limit)}`);
  }
  return {
    type,
    blockSchema1: node.blockSchema1 === undefined ? true : boolean(node.blockSchema1, join(path, 'blockSchema1')),
    gc: { untagged },
    maxUniqueTags: limit,
    platformTags: node.platformTags === undefined ? false : boolean(node.platformTags, join(path, 'platformTags')),
  };
}

function repositories(value: unknown): Record<string, RepositoryConfig> {
  const node = mapping(value, 'repositories', Object.keys(value ?? {}));
  const result: Record<string, RepositoryConfig> = {};
  for (const [key, item] of Object.entries(node)) {
    const path = join('repositories', key);
    if (key.length > maxRepositoryKeyLength) {
      throw new ConfigError(path, `a repository key is at most ${maxRepositoryKeyLength} characters (it is a DNS label in <key>.<baseDomain>); this one has ${key.length}`);
    }
    if (reservedRepositoryKeys.includes(key)) throw new ConfigError(path, `"${key}" is reserved (/v2/token and /v2/auth belong to the token service); choose another key`);
    if (!isValidRepositoryKey(key)) {
      throw new ConfigError(path, 'a repository key is lowercase letters, digits and dashes (no underscores), like docker-local');
    }
    result[key] = repository(item, path);
  }
  if (Object.keys(result).length === 0) throw new ConfigError('repositories', 'at least one repository is needed');
  checkVirtualRepositories(result);
  return result;
}

function listeners(value: unknown, baseDir: string): ListenerConfig[] {
  const result = list(value, 'listeners').map((item, i) => listener(item, join('listeners', i), baseDir));
  if (result.length === 0) throw new ConfigError('listeners', 'at least one listener is needed');
  const seen = new Map<number, number>();
  result.forEach(({ port: p }, i) => {
    const first = seen.get(p);
    if (p !== 0 && first !== undefined) throw new ConfigError(join(join('listeners', i), 'port'), `port ${p} is already used by listeners[${first}]`);
    seen.set(p, i);
  });
  return result;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

function metricsListener(value: unknown, listenerConfigs: readonly ListenerConfig[]): Config['metrics'] {
  if (value === undefined) return null;
  const node = mapping(value, 'metrics', ['address', 'port']);
  const metricsPort = port(node.port, 'metrics.port');
  const clash = listenerConfigs.findIndex((listener) => listener.port === metricsPort && metricsPort !== 0);
  if (clash !== -1) throw new ConfigError('metrics.port', `port ${metricsPort} is already used by listeners[${clash}]`);
  return { address: node.address === undefined ? '127.0.0.1' : bindAddress(node.address, 'metrics.address'), port: metricsPort };
}

/** Validates a parsed (and interpolated) YAML tree into the frozen Config. */
export function validateConfig(raw: unknown, options: { baseDir: string }): Config {
  const node = mapping(raw, '', ['dataDir', 'certsDir', 'baseDomain', 'trustedProxies', 'listeners', 'repositories', 'log', 'auth', 'permissions', 'metrics', ...storageKeys, ...servingKeys]);
  const log = node.log === undefined ? {} : mapping(node.log, 'log', ['access', 'format']);
  if (log.format !== undefined && log.format !== 'text' && log.format !== 'json') throw new ConfigError('log.format', `expected text or json, got ${describe(log.format)}`);
  const repositoryConfigs = repositories(node.repositories);
  const listenerConfigs = node.listeners === undefined ? [defaultListener] : listeners(node.listeners, options.baseDir);
  listenerConfigs.forEach((item, i) => {
    // A port binding or a mirror would take the redirected request as its own repository's.
    if (item.redirectToHttps && (item.tls !== 'none' || !listenerConfigs.some((other) => other.tls !== 'none' && servesByPath(other)))) {
      throw new ConfigError(`listeners[${i}].redirectToHttps`, 'needs a plain listener here and a TLS listener that serves by path (no repository, no mirrors) to redirect to');
    }
    if (item.repository !== null && !repositoryConfigs[item.repository]) {
      throw new ConfigError(`listeners[${i}].repository`, `no repository ${JSON.stringify(item.repository)} (configured: ${Object.keys(repositoryConfigs).join(', ')})`);
    }
    // A mirror serves pulls: a remote repository, or a virtual one over remote members.
    const mirrorable = Object.keys(repositoryConfigs).filter((name) => repositoryConfigs[name]!.type !== 'local');
    for (const [upstream, key] of Object.entries(item.mirrors ?? {})) {
      if (!mirrorable.includes(key)) {
        throw new ConfigError(`listeners[${i}].mirrors.${upstream}`, `expected a remote or virtual repository, got ${JSON.stringify(key)} (those configured: ${mirrorable.join(', ') || 'none'})`);
      }
    }
  });
  const baseDomain = node.baseDomain === undefined ? null : hostName(node.baseDomain, 'baseDomain');
  // Every acme listener serves the one certificate: their settings must agree.
  const context = { baseDomain, hasPlainListener: listenerConfigs.some((item) => item.tls === 'none'), repositoryKeys: Object.keys(repositoryConfigs), baseDir: options.baseDir };
  let acme: AcmeConfig | null = null;
  let acmeListener = -1;
  listenerConfigs.forEach((item, i) => {
    if (item.tls !== 'acme') return;
    const path = `listeners[${i}].tls`;
    const settings = acmeConfig(((node.listeners as Node[])[i] as Node).tls, path, context);
    if (acme === null) [acme, acmeListener] = [settings, i];
    else if (JSON.stringify(settings) !== JSON.stringify(acme)) throw new ConfigError(path, `acme listeners share one certificate: give this one the same settings as listeners[${acmeListener}].tls`);
  });
  const proxies = node.trustedProxies === undefined ? [] : list(node.trustedProxies, 'trustedProxies').map((entry, i) => {
    const text = string(entry, join('trustedProxies', i));
    const [address, prefix] = text.split('/');
    const family = isIP(address!);
    if (!family || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)))) {
      throw new ConfigError(join('trustedProxies', i), `expected an IP address or CIDR block like 10.0.0.0/8, got ${JSON.stringify(text)}`);
    }
    return text;
  });
  const storage = storageConfig(node.storage);
  return deepFreeze({
    dataDir: resolve(options.baseDir, node.dataDir === undefined ? './data' : string(node.dataDir, 'dataDir')),
    certsDir: resolve(options.baseDir, node.certsDir === undefined ? './certs' : string(node.certsDir, 'certsDir')),
    baseDomain,
    trustedProxies: proxies,
    listeners: listenerConfigs,
    acme,
    repositories: repositoryConfigs,
    metrics: metricsListener(node.metrics, listenerConfigs),
    log: { access: log.access === undefined ? true : boolean(log.access, 'log.access'), format: (log.format as 'text' | 'json' | undefined) ?? 'text' },
    auth: authConfig(node.auth, { listenerAddresses: listenerConfigs.map((item) => item.address), baseDomain }),
    permissions: permissionsConfig(node.permissions, Object.keys(repositoryConfigs)),
    storage,
    gc: collectorConfig(node.gc, node.uploads),
    ...servingConfig(node, { trustedProxies: proxies, storage }),
  });
}
