import type { Config } from '../config/types.js';
import { apacheSnippet } from './apache.js';
import { nginxSnippet } from './nginx.js';
import { proxyPlan, type Method } from './sites.js';

export type ProxyServer = 'nginx' | 'apache';
export const proxyServers: readonly ProxyServer[] = ['nginx', 'apache'];
export const methods: readonly Method[] = ['subdomain', 'port', 'path'];

/** The default method: subdomains when baseDomain is set, else repository paths. */
export function defaultMethod(config: Config): Method {
  return config.baseDomain ? 'subdomain' : 'path';
}

/**
 * The snippet for `server` and `method`; the caller has checked both names. `acmeCertificate`:
 * Wharf's ACME certificate file, when it holds one (tls/acme.ts issuedAcmeCertificate).
 */
export function proxyConfig(config: Config, server: ProxyServer, method: Method, acmeCertificate: string | null): string {
  const plan = proxyPlan(config, method, acmeCertificate);
  return server === 'nginx' ? nginxSnippet(plan) : apacheSnippet(plan);
}
