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
  /**
   * Whose certificate that is: the operator's (a files listener's), Wharf's ACME one (its file in
   * certsDir/acme/, chain and key in one), or Wharf's self-signed one (made in certsDir).
   */
  certificateSource: 'files' | 'acme' | 'self-signed';
  /** With acme listeners: the names the CA checks over HTTP-01 on port 80, whose challenges the proxy passes to Wharf. */
  acme: { domains: readonly string[] } | null;
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

/** `acmeCertificate`: Wharf's ACME certificate file, when it holds one (tls/acme.ts). */
export function proxyPlan(config: Config, method: Method, acmeCertificate: string | null): ProxyPlan {
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
  return {
    method, upstream, upstreamConfigured: plain !== undefined, ...proxyCertificate(config, acmeCertificate), sites,
    acme: config.acme ? { domains: config.acme.domains } : null,
    offload: config.proxy.offload ? { blobDirectory: blobDirectory(config) } : null,
  };
}

/**
 * What the proxy serves: the operator's own certificate (a files listener's first pair) if there
 * is one, else the ACME certificate Wharf holds, else Wharf's self-signed one (also while the
 * first ACME certificate has yet to come: the proxy must start to pass the CA's checks to Wharf).
 */
function proxyCertificate(config: Config, acmeCertificate: string | null): Pick<ProxyPlan, 'certificate' | 'certificateKey' | 'certificateSource'> {
  const operators = config.listeners.find((listener) => listener.tls === 'files')?.certificates[0];
  if (operators) return { certificate: operators.cert, certificateKey: operators.key, certificateSource: 'files' };
  if (acmeCertificate) return { certificate: acmeCertificate, certificateKey: acmeCertificate, certificateSource: 'acme' };
  return { certificate: `${config.certsDir}/server.crt`, certificateKey: `${config.certsDir}/server.key`, certificateSource: 'self-signed' };
}

/**
 * The names port 80 serves: the named sites on 443 (others have no name to match), redirected to
 * HTTPS, and with acme listeners the certificate's names, whose HTTP-01 challenges go to Wharf.
 */
export function portEightyNames(plan: ProxyPlan): string[] {
  const sites = plan.sites.filter((item) => item.port === 443 && item.serverName).map((item) => item.serverName!);
  return [...new Set([...sites, ...(plan.acme?.domains ?? [])])];
}

/** The path the CA asks for HTTP-01 challenges (RFC 8555 §8.3), passed to Wharf on port 80. */
export const acmeChallengePath = '/.well-known/acme-challenge/';

/** Where the certificate comes from, for the snippet's header (lines after the first start with "# "). */
export function certificateNote(plan: ProxyPlan): string {
  if (plan.certificateSource === 'files') return 'Certificate: the first pair of your files listener; replace it there and reload the proxy after a renewal.';
  if (plan.certificateSource === 'acme') {
    return `Certificate: Wharf's ACME certificate (chain and key in one file). Wharf renews it; the proxy reads it when it starts:
# reload the proxy after each renewal (\`wharf certs\` says when it renews). Port 80 passes the CA's challenges to Wharf.`;
  }
  const own = "Certificate: Wharf's own, made in certsDir by `wharf proxy-config` or `wharf certs`; clients trust its ca.crt (wharf certs says how).";
  return plan.acme
    ? `${own}
# Wharf has no ACME certificate yet: port 80 passes the CA's challenges to Wharf; once \`wharf certs\` shows the
# certificate, run proxy-config again and reload the proxy, which then serves it.`
    : own;
}
