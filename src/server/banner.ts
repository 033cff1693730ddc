import type { Config, ListenerConfig } from '../config/types.js';

// What `wharf serve` says when it is up: version, config file, data, and for each listener what
// it serves, so an operator sees at a glance that the config means what they meant.

function serves(listener: ListenerConfig, config: Config): string {
  if (listener.redirectToHttps) return 'redirects to HTTPS';
  if (listener.repository) return `${listener.repository} (port binding)`;
  if (listener.mirrors) return `a mirror: ${Object.entries(listener.mirrors).map(([upstream, key]) => `${upstream} from ${key}`).join(', ')} (by containerd's ns)`;
  const keys = Object.keys(config.repositories);
  const subdomains = config.baseDomain ? ` and by subdomain (<key>.${config.baseDomain})` : '';
  return `${keys.join(', ')} by path (/v2/<key>/…)${subdomains}`;
}

export function bannerLines(config: Config, urls: readonly string[], started: { version: string; configFile: string; workers: number }): string[] {
  const processes = started.workers > 1 ? `, ${started.workers} worker processes` : '';
  return [
    `wharf ${started.version}: config ${started.configFile}, data in ${config.dataDir}${processes}`,
    ...config.listeners.map((listener, i) => `listening on ${urls[i]} serving ${serves(listener, config)}`),
  ];
}
