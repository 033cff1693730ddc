import type { Config } from '../config/types.js';
import { accessLog } from '../http/accesslog.js';
import type { Live } from '../http/app.js';
import { defaultMethod, methods, proxyConfig, proxyServers, type ProxyServer } from '../proxyconf/index.js';
import { blobDirectory } from '../proxyconf/offload.js';
import type { Method } from '../proxyconf/sites.js';
import type { RepositorySet } from '../repos/set.js';
import { trustedProxies } from '../routing/proxies.js';
import { accessMethods } from '../setup/access.js';
import { setupText } from '../setup/instructions.js';
import { issuedAcmeCertificate } from '../tls/acme.js';

// What requests read for one configuration; a reload makes a new one and swaps it in whole.

/** The config with each listener's port as bound (port 0 picks one): what "Set Me Up" must name. */
export function withPorts(config: Config, ports: readonly number[]): Config {
  return { ...config, listeners: config.listeners.map((listener, i) => ({ ...listener, port: ports[i] ?? listener.port })) };
}

export interface LiveParts {
  config: Config;
  repositories: RepositorySet;
  writeLog: (text: string) => void;
  caPath: () => string | null;
}

/** What requests read, for one configuration. */
export function liveState({ config, repositories, writeLog, caPath }: LiveParts): Live {
  const proxies = trustedProxies(config.trustedProxies);
  return {
    repositories,
    keys: new Set(repositories.keys),
    trustedProxies: proxies,
    offload: config.proxy.offload ? { blobDirectory: blobDirectory(config), trustedProxies: proxies } : null,
    baseDomain: config.baseDomain,
    accessLog: config.log.access ? accessLog(config.log.format, writeLog) : null,
    reach: (key) => accessMethods(config, key),
    setup: (key, options) => setupText(config, key, caPath(), { authentication: config.auth.enabled, showUpstream: options.showUpstream }),
    proxyConfig: (server, method) => {
      const chosen = (method ?? defaultMethod(config)) as Method;
      return proxyServers.includes(server as ProxyServer) && methods.includes(chosen) ? proxyConfig(config, server as ProxyServer, chosen, issuedAcmeCertificate(config)) : null;
    },
  };
}
