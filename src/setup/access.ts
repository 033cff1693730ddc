import { hostname } from 'node:os';
import type { Config, ListenerConfig } from '../config/types.js';
import { servesByPath } from '../config/validate.js';
import { reachableMembers } from '../config/virtual.js';

// How clients reach a repository, as "Set Me Up" and `wharf setup` name it: a port binding
// first, then a subdomain, then the repository path; among listeners, a TLS one before a plain
// one (clients need no insecure-registry setting for it).

export interface Access {
  /** What docker login takes: host[:port]. */
  registry: string;
  /** What image names start with: registry, or registry/<key> for the path method. */
  prefix: string;
  method: 'port binding' | 'subdomain' | 'repository path';
  listener: ListenerConfig;
}

function hostOf(listener: ListenerConfig, config: Config): string {
  if (listener.address === '0.0.0.0' || listener.address === '::') return config.baseDomain ?? hostname();
  return listener.address.includes(':') ? `[${listener.address}]` : listener.address;
}

function withPort(host: string, listener: ListenerConfig): string {
  const defaultPort = listener.tls === 'none' ? 80 : 443;
  return listener.port === defaultPort ? host : `${host}:${listener.port}`;
}

/** `host:port` of a listener as clients name it. */
export function listenerAddress(listener: ListenerConfig, config: Config): string {
  return withPort(hostOf(listener, config), listener);
}

/** TLS listeners before plain ones, otherwise in config order. */
function tlsFirst(listeners: ListenerConfig[]): ListenerConfig | undefined {
  return listeners.find((listener) => listener.tls !== 'none') ?? listeners[0];
}

/**
 * How clients reach `key`; null when it is not a configured repository, or when no listener
 * reaches it (only port bindings of other keys): another key's binding would take its images.
 */
export function accessFor(config: Config, key: string): Access | null {
  if (!config.repositories[key]) return null;
  const bound = tlsFirst(config.listeners.filter((listener) => listener.repository === key));
  if (bound) {
    const registry = listenerAddress(bound, config);
    return { registry, prefix: registry, method: 'port binding', listener: bound };
  }
  const shared = tlsFirst(config.listeners.filter(servesByPath));
  if (!shared) return null;
  if (config.baseDomain && shared.tls !== 'none') {
    const registry = withPort(`${key}.${config.baseDomain}`, shared);
    return { registry, prefix: registry, method: 'subdomain', listener: shared };
  }
  const registry = listenerAddress(shared, config);
  return { registry, prefix: `${registry}/${key}`, method: 'repository path', listener: shared };
}

/**
 * Every way clients reach `key` (the preferred one, as accessFor chooses it, first): its port
 * bindings, its subdomain on a shared TLS listener, and the repository path on a shared listener.
 */
export function accessMethods(config: Config, key: string): Access[] {
  const preferred = accessFor(config, key);
  if (!preferred) return [];
  const methods: Access[] = config.listeners.filter((listener) => listener.repository === key).map((listener) => {
    const registry = listenerAddress(listener, config);
    return { registry, prefix: registry, method: 'port binding', listener };
  });
  const shared = tlsFirst(config.listeners.filter(servesByPath));
  if (shared && config.baseDomain && shared.tls !== 'none') {
    const registry = withPort(`${key}.${config.baseDomain}`, shared);
    methods.push({ registry, prefix: registry, method: 'subdomain', listener: shared });
  }
  if (shared) {
    const registry = listenerAddress(shared, config);
    methods.push({ registry, prefix: `${registry}/${key}`, method: 'repository path', listener: shared });
  }
  const same = (a: Access, b: Access) => a.prefix === b.prefix && a.method === b.method;
  return [preferred, ...methods.filter((method) => !same(method, preferred))];
}

/**
 * The repositories clients cannot reach at all: no access method of their own, no mirror
 * listener mapping them, and no reachable virtual repository over them.
 */
export function unreachedRepositories(config: Config): string[] {
  const keys = Object.keys(config.repositories);
  const mirrored = new Set(config.listeners.flatMap((listener) => Object.values(listener.mirrors ?? {})));
  const entries = keys.filter((key) => accessFor(config, key) !== null || mirrored.has(key));
  const reached = new Set([...entries, ...entries.flatMap((key) => reachableMembers(key, config.repositories))]);
  return keys.filter((key) => !reached.has(key));
}
