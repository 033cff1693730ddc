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
