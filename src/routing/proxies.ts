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

/** The values of a forwarded header in order, however many header lines it came in. */
function forwardedValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value).split(',').map((item) => item.trim());
}

/**
 * The value the proxy that connects to us wrote: the last one. X-Forwarded-Host, -Proto and -Port
 * describe the request that proxy received; a proxy that appends (Apache's mod_proxy does, to
 * X-Forwarded-Host) leaves what the client sent before its own value, where it counts for nothing.
 */
export function lastForwarded(value: string | string[] | undefined): string | undefined {
  return forwardedValues(value).at(-1) || undefined;
}

const forwardedHost = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The origin clients used, as a trusted proxy reports it (X-Forwarded-Proto, -Host, -Port), for
 * absolute Location and Link URLs; '' when it reports no usable proto and host (URLs stay relative).
 */
export function forwardedOrigin(headers: IncomingHttpHeaders): string {
  const proto = lastForwarded(headers['x-forwarded-proto'])?.toLowerCase();
  const host = lastForwarded(headers['x-forwarded-host']);
  if ((proto !== 'http' && proto !== 'https') || !host || !forwardedHost.test(host)) return '';
  const port = lastForwarded(headers['x-forwarded-port']);
  const explicit = port !== undefined && /^\d{1,5}$/.test(port) && port !== (proto === 'https' ? '443' : '80') && !/:\d+$/.test(host);
  return `${proto}://${host}${explicit ? `:${port}` : ''}`;
}

/** An address as X-Forwarded-For lists it (an IPv4 port, a bracketed IPv6 one), bare; null if it is none. */
function forwardedAddress(entry: string): string | null {
  const bare = entry.startsWith('[') ? entry.slice(1, entry.indexOf(']')) : /^[\d.]+:\d+$/.test(entry) ? entry.slice(0, entry.indexOf(':')) : entry;
  return isIP(bare) ? bare : null;
}

/**
 * The addresses a request came through, nearest first: the peer, then the proxies and the client
 * as X-Forwarded-For names them. Each proxy appends the address it was connected from (nginx's
 * $proxy_add_x_forwarded_for, Apache's mod_proxy), so the header is read from the right, and only
 * while the address reached is a trusted proxy: past them, the first address is the client; what
 * lies further left was written by the client itself and is not believed. An entry that is no
 * address ends the walk.
 */
export function forwardedChain(peer: string | undefined, headers: IncomingHttpHeaders, proxies: TrustedProxies): string[] {
  if (peer === undefined) return [];
  const chain = [peer];
  const hops = forwardedValues(headers['x-forwarded-for']);
  for (let i = hops.length - 1; i >= 0 && proxies.trusts(chain.at(-1)); i--) {
    const hop = forwardedAddress(hops[i]!);
    if (hop === null) break;
    chain.push(hop);
  }
  return chain;
}

/** The client's address (throttling, the audit trail, the access log): the far end of the forwarded chain. */
export function clientAddress(peer: string | undefined, headers: IncomingHttpHeaders, proxies: TrustedProxies): string {
  return forwardedChain(peer, headers, proxies).at(-1) ?? '-';
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
