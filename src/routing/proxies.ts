import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';

// Which peers may speak for the client through X-Forwarded-* headers: only the reverse proxies
// the operator lists. From anyone else those headers are ignored, so a client cannot claim
// another host or address by sending them.

export interface TrustedProxies {
  trusts(address: string | undefined): boolean;
}

/** `entries` are addresses or CIDR blocks ("10.0.0.0/8", "::1"); validated by config/. */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/');
    const family = isIP(address!) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address!, family);
    else list.addSubnet(address!, Number(prefix), family);
  }
  return {
    trusts(address) {
      if (!address || entries.length === 0) return false;
      const plain = address.startsWith('::ffff:') ? address.slice(7) : address; // IPv4 over an IPv6 socket
      return list.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** The first value of a possibly comma-joined forwarded header. */
export function firstForwarded(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text?.split(',')[0]?.trim() || undefined;
}

const forwardedHost = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The origin clients used, as a trusted proxy reports it (X-Forwarded-Proto, -Host, -Port), for
 * absolute Location and Link URLs; '' when it reports no usable proto and host (URLs stay relative).
 */
export function forwardedOrigin(headers: IncomingHttpHeaders): string {
  const proto = firstForwarded(headers['x-forwarded-proto'])?.toLowerCase();
  const host = firstForwarded(headers['x-forwarded-host']);
  if ((proto !== 'http' && proto !== 'https') || !host || !forwardedHost.test(host)) return '';
  const port = firstForwarded(headers['x-forwarded-port']);
  const explicit = port !== undefined && /^\d{1,5}$/.test(port) && port !== (proto === 'https' ? '443' : '80') && !/:\d+$/.test(host);
  return `${proto}://${host}${explicit ? `:${port}` : ''}`;
}

/** The client's address: the one a trusted proxy forwards for, else the peer's. */
export function clientAddress(peer: string | undefined, headers: IncomingHttpHeaders, proxies: TrustedProxies): string {
  return (proxies.trusts(peer) ? firstForwarded(headers['x-forwarded-for']) : undefined) ?? peer ?? '-';
}

/**
 * The origin the client used, for absolute URLs (Location and Link behind a proxy, the token
 * realm always): what a trusted proxy reports, else the request's own scheme and Host (or
 * :authority); `fallback` when the Host is missing or malformed (never echoed into a header).
 */
export function clientOrigin(headers: IncomingHttpHeaders, options: { trusted: boolean; tls: boolean; fallback: string }): { origin: string; reported: boolean } {
  const reported = options.trusted ? forwardedOrigin(headers) : '';
  if (reported) return { origin: reported, reported: true };
  const host = headers.host ?? (headers[':authority'] as string | undefined);
  return { origin: `${options.tls ? 'https' : 'http'}://${host && forwardedHost.test(host) ? host : options.fallback}`, reported: false };
}
