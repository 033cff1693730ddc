import type { Principal } from '../auth/principal.js';
import { parseScopes } from '../auth/scopes.js';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import { qualifyName, type Route } from '../routing/route.js';
import { parseAuthorization, sentCredentials } from './credentials.js';
import type { Ctx } from './env.js';
import { readLimited, requestBody } from './streams.js';

// The token endpoint (distribution's docs/spec/auth/token.md and oauth.md), at /v2/token and
// /api/docker/<key>/v2/token:
//   GET  ?service=&scope=…&scope=…[&offline_token=true]   Basic, an access token, or nothing (anonymous)
//   POST grant_type=password|refresh_token (form)         docker login's OAuth2 flow
// Each scope's name is read as the client names images on this route (route.namesIncludeKey),
// so it maps to the repository and image the registry requests will resolve to.

export interface TokenContext {
  auth: AuthService;
  /** The registry-wide route of this request's host/port/prefix. */
  route: Route;
  address: string;
  host: string | undefined;
  /** Over TLS or on loopback (RequestInfo.secure). */
  secure: boolean;
  /** From a trusted proxy (RequestInfo.proxied). */
  proxied: boolean;
}

const maxFormBytes = 64 * 1024;

function invalid(message: string): RegistryError {
  return new RegistryError('UNSUPPORTED', { status: 400, message });
}

function unauthorized(error: unknown): unknown {
  if (!(error instanceof RegistryError) || error.code !== 'UNAUTHORIZED') return error;
  return new RegistryError('UNAUTHORIZED', { message: error.message, headers: { 'WWW-Authenticate': 'Basic realm="wharf"' } });
}

async function formOf(c: Ctx): Promise<URLSearchParams> {
  const type = c.req.header('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) throw invalid('POST to the token endpoint takes an application/x-www-form-urlencoded body');
  const tooLarge = () => new RegistryError('SIZE_INVALID', { status: 413, message: `token request over ${maxFormBytes} bytes` });
  return new URLSearchParams((await readLimited(requestBody(c), maxFormBytes, tooLarge)).toString('utf8'));
}

/**
 * Passwords and access tokens are taken where registry requests take them (`secure`), and also on
 * a plain listener a client reached directly: docker login on a plain-HTTP listener beyond
 * loopback, which is named in a warning at start. Through a trusted proxy, only where registry
 * requests take them (it reports https, or names a loopback client from loopback): a proxy that
 * says nothing is not taken for a client on loopback here either.
 */
function requireSafeTransport(context: TokenContext): void {
  if (context.secure || !context.proxied) return;
  throw new RegistryError('DENIED', { message: 'credentials are accepted over TLS or on loopback only: this request came through a trusted proxy that reports neither https nor a loopback client' });
}

async function getPrincipal(c: Ctx, context: TokenContext): Promise<Principal> {
  const { auth, address } = context;
  const sent = sentCredentials(c.req.header('authorization'), auth);
  if (sent.kind === 'none') return { kind: 'anonymous' };
  if (sent.kind === 'malformed') throw new RegistryError('UNAUTHORIZED', { message: sent.reason });
  if (sent.kind !== 'basic') throw new RegistryError('UNAUTHORIZED', { message: 'the token endpoint takes Basic credentials or an access token' });
  requireSafeTransport(context);
  return auth.login(sent, address, { fresh: true });
}

async function postPrincipal(form: URLSearchParams, context: TokenContext): Promise<Principal> {
  const grantType = form.get('grant_type');
  if (grantType === 'refresh_token') return context.auth.refresh(form.get('refresh_token') ?? '', context.address);
  if (grantType !== 'password') throw invalid(`unsupported grant_type ${JSON.stringify(grantType)}: expected password or refresh_token`);
  const username = form.get('username');
  const password = form.get('password');
  if (!username || password === null) throw invalid('grant_type=password needs username and password');
  requireSafeTransport(context);
  return context.auth.login({ username, password }, context.address, { fresh: true });
}

export async function tokenEndpoint(c: Ctx, context: TokenContext): Promise<Response> {
  const { auth, route } = context;
  const post = c.req.method === 'POST';
  if (!post && c.req.method !== 'GET') throw new RegistryError('UNSUPPORTED', { message: 'the token endpoint takes GET and POST', headers: { Allow: 'GET, POST' } });
  const form = post ? await formOf(c) : new URLSearchParams(new URL(c.req.url).search);
  const service = form.get('service');
  if (service !== null && service !== auth.config.service) throw invalid(`unknown service ${JSON.stringify(service.slice(0, 100))}; this registry is ${JSON.stringify(auth.config.service)}`);
  const scopes = parseScopes(form.getAll('scope'));
  let principal: Principal;
  try {
    principal = post ? await postPrincipal(form, context) : await getPrincipal(c, context);
  } catch (error) {
    throw unauthorized(error);
  }
  const grants = auth.grant(principal, scopes, (name) => {
    const qualified = qualifyName(route, name);
    return qualified && { repoKey: qualified.repoKey, image: qualified.name };
  });
  const offline = post ? form.get('access_type') === 'offline' : form.get('offline_token') === 'true';
  const answer = await auth.answer(principal, grants, { offline });
  c.env.notes.user = principal.kind === 'anonymous' ? '-' : principal.name;
  return new Response(JSON.stringify(answer), {
    status: 200,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', Pragma: 'no-cache' },
  });
}

/**
 * GET /api/docker/<key>/v2/auth with Basic credentials: the ~/.docker/config.json `auths` entry
 * for this registry host, as Artifactory answers it. Over TLS or on loopback only: the answer
 * holds the credentials.
 */
export async function authEntry(c: Ctx, context: TokenContext): Promise<Response> {
  if (c.req.method !== 'GET') throw new RegistryError('UNSUPPORTED', { message: 'GET only', headers: { Allow: 'GET' } });
  const sent = parseAuthorization(c.req.header('authorization'));
  const basicRealm = { 'WWW-Authenticate': 'Basic realm="wharf"' };
  if (sent.kind !== 'basic') throw new RegistryError('UNAUTHORIZED', { message: 'send your user name and password (or access token) with Basic', headers: basicRealm });
  if (!context.secure) throw new RegistryError('DENIED', { message: 'credentials are accepted over TLS or on loopback only' });
  try {
    await context.auth.login(sent, context.address, { fresh: true });
  } catch (error) {
    throw unauthorized(error);
  }
  const host = context.host && /^[A-Za-z0-9.:[\]-]+$/.test(context.host) ? context.host : 'localhost';
  const auth = Buffer.from(`${sent.username}:${sent.password}`).toString('base64');
  return new Response(JSON.stringify({ auths: { [host]: { auth } } }, null, 2), {
    status: 200,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
  });
}
