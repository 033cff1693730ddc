import { Hono } from 'hono';
import type { Logger } from '../log/logger.js';
import { RegistryError } from '../oci/errors.js';
import type { RepositorySet } from '../repos/set.js';
import { firstForwarded, forwardedOrigin, type TrustedProxies } from '../routing/proxies.js';
import { route } from '../routing/route.js';
import type { AccessLog } from './accesslog.js';
import { dispatch } from './dispatch.js';
import type { Ctx, Env } from './env.js';
import { errorResponse } from './errors.js';
import { renderMetrics } from './metrics.js';
import { observe } from './observe.js';
import { refuseLargeHeaders } from './refusals.js';

/** What a configuration reload may change: read anew by every request. */
export interface Live {
  repositories: RepositorySet;
  /** The configured repository keys (subdomains are checked against them). */
  keys: ReadonlySet<string>;
  trustedProxies: TrustedProxies;
  baseDomain: string | null;
  accessLog: AccessLog | null;
  /** "Set Me Up" text for a repository key, or null for an unknown key. */
  setup: (key: string) => string | null;
  /** nginx/Apache configuration text, or null for an unknown server or method. */
  proxyConfig: (server: string, method: string | undefined) => string | null;
}

export interface AppOptions {
  live: () => Live;
  logger: Logger;
  /** The listener's port binding, if any. */
  boundRepository: string | null;
  /** ACME HTTP-01: the key authorization for a token while an order waits for it. */
  acmeChallenge: ((token: string) => string | undefined) | null;
  /** On a redirectToHttps listener: the HTTPS port to send every request to (read per request). */
  redirectToPort: (() => number) | null;
}

/** The Hono app: every registry path goes through routing, then the OCI dispatcher. */
export function createApp(options: AppOptions): Hono<Env> {
  const { live, logger } = options;
  const app = new Hono<Env>();
  app.use(async (c, next) => {
    const current = live();
    observe(c, current.trustedProxies, (record) => live().accessLog?.(record));
    refuseLargeHeaders(c);
    await next();
  });
  app.onError((error, c) => errorResponse(error, c, logger));
  const acmeChallenge = options.acmeChallenge;
  if (acmeChallenge !== null) {
    // Before the HTTPS redirect: the CA asks over plain HTTP on port 80.
    app.get('/.well-known/acme-challenge/:token', (c) => {
      const answer = acmeChallenge(c.req.param('token'));
      return answer === undefined ? c.text('no ACME challenge is pending for this token\n', 404) : c.text(answer);
    });
  }
  const redirectToPort = options.redirectToPort;
  if (redirectToPort !== null) {
    // 308 keeps the method and body, so a push that starts here continues over HTTPS.
    app.all('*', (c) => {
      const host = (c.env.incoming.headers.host ?? 'localhost').replace(/:\d+$/, '');
      const port = redirectToPort();
      const url = new URL(c.req.url);
      return c.redirect(`https://${host}${port === 443 ? '' : `:${port}`}${url.pathname}${url.search}`, 308);
    });
  }
  const registry = (c: Ctx) => {
    const current = live();
    // HTTP/2 carries the host in :authority rather than Host; a trusted proxy may name it.
    const { headers, socket } = c.env.incoming;
    const trusted = current.trustedProxies.trusts(socket?.remoteAddress);
    const forwarded = trusted ? firstForwarded(headers['x-forwarded-host']) : undefined;
    const host = forwarded ?? headers.host ?? (headers[':authority'] as string | undefined);
    const resolved = route(c.req.path, host, { boundRepository: options.boundRepository, baseDomain: current.baseDomain, keys: current.keys });
    if (!resolved) throw new RegistryError('NAME_UNKNOWN', { message: `no registry endpoint at ${c.req.path}`, detail: { path: c.req.path } });
    if (resolved.repoKey) c.set('repository', resolved.repoKey);
    // Behind a proxy that reports the client's origin, Location and Link name it (as Distribution).
    const origin = trusted ? forwardedOrigin(headers) : '';
    return dispatch(c, origin ? { ...resolved, prefix: `${origin}${resolved.prefix}` } : resolved, current.repositories);
  };
  app.get('/metrics', () => new Response(renderMetrics(live().repositories), { headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' } }));
  app.get('/api/setup/:key', (c) => {
    const key = c.req.param('key');
    const current = live();
    current.repositories.get(key); // NAME_UNKNOWN, naming the configured keys, for any other key
    return new Response(current.setup(key), { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
  app.get('/api/proxy-config/:server', (c) => {
    const text = live().proxyConfig(c.req.param('server'), c.req.query('method'));
    if (text === null) throw new RegistryError('UNSUPPORTED', { status: 400, message: 'expected /api/proxy-config/nginx|apache?method=subdomain|port|path' });
    return new Response(text, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
  app.all('/v2', registry);
  app.all('/v2/*', registry);
  app.all('/api/docker/*', registry);
  app.notFound((c) => errorResponse(new RegistryError('NAME_UNKNOWN', { message: `no endpoint at ${c.req.path}; the registry API is under /v2/`, detail: { path: c.req.path } }), c, logger));
  return app;
}
