import type { TLSSocket } from 'node:tls';
import type { Access } from '../auth/access.js';
import type { AuthService } from '../auth/service.js';
import { isLoopbackAddress } from '../config/auth.js';
import { RegistryError } from '../oci/errors.js';
import { clientOrigin, forwardedChain, lastForwarded, type TrustedProxies } from '../routing/proxies.js';
import type { Route } from '../routing/route.js';
import type { Ctx } from './env.js';
import { Gate } from './gate.js';

// What a handler needs to know about where a request came from, and the gate that authenticates it.

export interface RequestInfo {
  /** The host that selects a repository (Host, :authority, or a trusted proxy's X-Forwarded-Host). */
  host: string | undefined;
  /** The origin the client used, absolute; `reported` when a trusted proxy named it. */
  origin: string;
  reported: boolean;
  address: string;
  /** Over TLS (here or at a trusted proxy), or on loopback all the way from the client. */
  secure: boolean;
  /** From a trusted proxy: what it reports (or does not) decides `secure`. */
  proxied: boolean;
}

export function requestInfo(c: Ctx, proxies: TrustedProxies): RequestInfo {
  const { headers, socket } = c.env.incoming;
  const peer = socket?.remoteAddress;
  const trusted = proxies.trusts(peer);
  const tls = Boolean((socket as TLSSocket | undefined)?.encrypted) || headers[':scheme'] === 'https';
  const forwarded = trusted ? lastForwarded(headers['x-forwarded-host']) : undefined;
  const host = forwarded ?? headers.host ?? (headers[':authority'] as string | undefined);
  const fallback = socket?.localAddress ? `${socket.localAddress.includes(':') ? `[${socket.localAddress}]` : socket.localAddress}:${socket.localPort}` : 'localhost';
  const { origin, reported } = clientOrigin(headers, { trusted, tls, fallback });
  // Passwords travelled on loopback only when every hop did; a trusted proxy that names no client says nothing.
  const chain = forwardedChain(peer, headers, proxies);
  const loopback = chain.length > (trusted ? 1 : 0) && chain.every((address) => isLoopbackAddress(address.replace(/^::ffff:/, '')));
  // The proxy's word on the client's scheme stands on its own, with or without X-Forwarded-Host.
  const httpsAtProxy = trusted && lastForwarded(headers['x-forwarded-proto'])?.toLowerCase() === 'https';
  return { host, origin, reported, address: chain.at(-1) ?? '-', secure: tls || httpsAtProxy || loopback, proxied: trusted };
}

/**
 * The token endpoint that serves a route's scope names: below the /api/docker/<key>/v2/ prefix, or
 * /v2/token; on a mirror, with the request's ns, so the token names the repository it chose.
 */
export function realmPath(route: Route | null): string {
  const path = route?.prefix.startsWith('/api/docker/') ? `${route.prefix}token` : '/v2/token';
  return route?.query ? `${path}?${route.query}` : path;
}

/** Authenticates the request (401/429 for bad credentials) and remembers who it is for the log and error rendering. */
export async function openGate(c: Ctx, auth: AuthService | null, info: RequestInfo, route: Route | null): Promise<Gate> {
  const gate = await Gate.open(c.req.header('authorization'), { auth, realm: `${info.origin}${realmPath(route)}`, address: info.address, secure: info.secure });
  c.env.notes.user = gate.who;
  c.set('access', gate.access);
  return gate;
}

/**
 * What an error may say to this caller. Configuration (upstream addresses, allow patterns) is for
 * administrators: other signed-in callers learn that the upstream failed, not which or why (as Set
 * Me Up does not show it to them). Anonymous callers (and callers without credentials) are told
 * less again, never more: an error concealed from signed-in callers, a failure of ours or one
 * that mentions the upstream is its code and standard message only.
 */
export function concealed(error: unknown, access: Access | null | undefined, authOn: boolean): unknown {
  if (!authOn || !(error instanceof RegistryError) || access?.admin) return error;
  const configuration = error.configuration || namesAnAddress(error);
  if (!access || access.principal.kind === 'anonymous') {
    const told = !configuration && error.status < 500 && !/upstream/i.test(error.message);
    return told ? error : new RegistryError(error.code, { status: error.status, headers: { ...error.headers } });
  }
  if (!configuration) return error;
  return new RegistryError(error.code, { status: error.status, headers: { ...error.headers }, message: concealedUpstreamMessage });
}

const concealedUpstreamMessage = 'the upstream failed; an administrator can find which and why in the server log';

/** Upstream URLs (and the origins of their token endpoints, and layer URLs) show configuration wherever an error names them. */
function namesAnAddress(error: RegistryError): boolean {
  return /[a-z][a-z0-9+.-]*:\/\//i.test(`${error.message} ${JSON.stringify(error.detail)}`);
}
