import type { Config } from '../config/types.js';
import { blobDirectory } from './offload.js';

// What a reverse proxy in front of Wharf must serve, per access method: one site per name or
// port, each forwarding to Wharf's plain listener. Subdomain and port sites rewrite /v2/… to the
// repository's Artifactory-style prefix /api/docker/<key>/v2/…, so Wharf needs no baseDomain or
// port binding of its own behind the proxy; Location headers Wharf sends under that prefix are
// passed through as they are.

export type Method = 'subdomain' | 'port' | 'path';

export interface Site {
  /** The TLS port the proxy listens on. */
  port: number;
  /** server_name / ServerName; null: any name on that port. */
  serverName: string | null;
  /** The repository key the site's /v2/ is rewritten to, or null (path method: no rewrite). */
  repoKey: string | null;
}

export interface ProxyPlan {
  method: Method;
  /** Wharf's plain listener, where the proxy forwards to (host:port). */
  upstream: string;
  /** Whether the config has that listener; without one the sites forward to 127.0.0.1:5000. */
  upstreamConfigured: boolean;
  certificate: string;
  certificateKey: string;
  /** Whether that certificate is Wharf's own (made in certsDir), rather than the operator's. */
  ownCertificate: boolean;
  sites: Site[];
  /** With proxy.offload: the blob directory the proxy serves blob bytes from itself. */
  offload: { blobDirectory: string } | null;
}

/** Ports for the port method: the configured port bindings, then free numbers from 5001 on. */
function portsFor(config: Config): Map<string, number> {
  const ports = new Map<string, number>();
  for (const listener of config.listeners) if (listener.repository) ports.set(listener.repository, listener.port);
  let next = 5001;
  const used = new Set(config.listeners.map((listener) => listener.port));
  for (const key of Object.keys(config.repositories)) {
    if (ports.has(key)) continue;
    while (used.has(next) || [...ports.values()].includes(next)) next++;
    ports.set(key, next++);
  }
  return ports;
}

export function proxyPlan(config: Config, method: Method): ProxyPlan {
  const plain = config.listeners.find((listener) => listener.tls === 'none' && !listener.redirectToHttps && listener.repository === null);
  const address = !plain || plain.address === '0.0.0.0' || plain.address === '::' ? '127.0.0.1' : plain.address;
  const upstream = `${address.includes(':') ? `[${address}]` : address}:${plain?.port ?? 5000}`;
  const keys = Object.keys(config.repositories);
  const base = config.baseDomain ?? 'registry.example.com';
  const sites: Site[] = method === 'subdomain'
    ? keys.map((key) => ({ port: 443, serverName: `${key}.${base}`, repoKey: key }))
    : method === 'port'
      ? [...portsFor(config)].map(([key, port]) => ({ port, serverName: null, repoKey: key }))
      : [{ port: 443, serverName: config.baseDomain, repoKey: null }];
  return { method, upstream, upstreamConfigured: plain !== undefined, ...proxyCertificate(config), sites, offload: config.proxy.offload ? { blobDirectory: blobDirectory(config) } : null };
}

/** What the proxy serves: the operator's own certificate (a files listener's first pair) if there is one, else Wharf's. */
function proxyCertificate(config: Config): Pick<ProxyPlan, 'certificate' | 'certificateKey' | 'ownCertificate'> {
  const operators = config.listeners.find((listener) => listener.tls === 'files')?.certificates[0];
  return operators
    ? { certificate: operators.cert, certificateKey: operators.key, ownCertificate: false }
    : { certificate: `${config.certsDir}/server.crt`, certificateKey: `${config.certsDir}/server.key`, ownCertificate: true };
}

/** The names port 80 redirects to HTTPS: the named sites on 443 (others have no name to match). */
export function redirectNames(plan: ProxyPlan): string[] {
  return [...new Set(plan.sites.filter((item) => item.port === 443 && item.serverName).map((item) => item.serverName!))];
}

/** Where the certificate comes from, for the snippet's header. */
export function certificateNote(plan: ProxyPlan): string {
  return plan.ownCertificate
    ? "Certificate: Wharf's own, made in certsDir by `wharf proxy-config` or `wharf certs`; clients trust its ca.crt (wharf certs says how)."
    : 'Certificate: the first pair of your files listener; replace it there and reload the proxy after a renewal.';
}
