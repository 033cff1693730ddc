import { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import type { Logger } from '../log/logger.js';
import { RegistryError } from '../oci/errors.js';
import type { RepositorySet } from '../repos/set.js';
import type { Access as Reach } from '../setup/access.js';
import type { TrustedProxies } from '../routing/proxies.js';
import { route, unknownHost } from '../routing/route.js';
import type { AccessLog } from './accesslog.js';
import { adminRoutes, type AdminOptions } from './admin.js';
import { artifactoryRoutes } from './artifactory.js';
import { dispatch, unknownRepository, unsupportedMethod } from './dispatch.js';
import type { Ctx, Env } from './env.js';
import { errorResponse, renderError } from './errors.js';
import { addHealthRoutes, type Readiness } from './health.js';
import { imageInfoRoutes } from './image-info.js';
import type { Metrics } from './metrics.js';
import { observe, type RequestRecord } from './observe.js';
import type { OffloadSettings } from './offload.js';
import { promoteRoute } from './promote.js';
import { repositoriesRoute } from './repositories.js';
import { searchRoute } from './search.js';
import { headerRefusal } from './refusals.js';
import { concealed, openGate, requestInfo } from './request.js';
import { authEntry, tokenEndpoint } from './token.js';

/** What a configuration reload may change: read anew by every request. */
export interface Live {
  repositories: RepositorySet;
  /** The configured repository keys (subdomains are checked against them). */
  keys: ReadonlySet<string>;
  trustedProxies: TrustedProxies;
  baseDomain: string | null;
  accessLog: AccessLog | null;
  /** How clients reach a repository, the preferred way first (none for an unknown key). */
  reach: (key: string) => Reach[];
  /** "Set Me Up" text for a repository key, or null for an unknown key; the upstream only for `showUpstream`. */
  setup: (key: string, options: { showUpstream: boolean }) => string | null;
  /** nginx/Apache configuration text, or null for an unknown server or method. */
  proxyConfig: (server: string, method: string | undefined) => string | null;
  /** With proxy.offload: where blob files are, for answers the proxy serves. */
  offload: OffloadSettings | null;
}

export interface AppOptions {
  live: () => Live;
  logger: Logger;
  /** The listener's port binding, if any. */
  boundRepository: string | null;
  /** On a mirror listener: upstream registry (ns) → repository key. */
  mirrors: Readonly<Record<string, string>> | null;
  /** ACME HTTP-01: the key authorization for a token while an order waits for it. */
  acmeChallenge: ((token: string) => string | undefined) | null;
  /** On a redirectToHttps listener: the HTTPS port to send every request to (read per request). */
  redirectToPort: (() => number) | null;
  /** Users, tokens and permissions; null when authentication is off (everyone may do everything). */
  auth: AuthService | null;
  metrics: Metrics;
  /** Whether GET /metrics is served here (not when a metrics listener of its own serves it). */
  serveMetrics: boolean;
  /** What GET /readyz reports. */
  ready: () => Promise<Readiness>;
  /** A garbage collection now (POST /api/system/storage/gc, admins only). */
  collectGarbage: AdminOptions['collectGarbage'];
}

/** The Hono app: every registry path goes through routing, then the OCI dispatcher. */
export function createApp(options: AppOptions): Hono<Env> {
  const { live, logger } = options;
  const app = new Hono<Env>();
  const auth = options.auth;
  const { metrics } = options;
  const mirrors = options.mirrors ? new Map(Object.entries(options.mirrors)) : null;
  const sink = (record: RequestRecord) => {
    metrics.record(record);
    live().accessLog?.(record);
  };
  // Observation wraps the app's fetch instead of being a Hono middleware: with a middleware, Hono
  // runs every request through its compose chain (an async layer per handler, measured at ~7 µs
  // of a ~90 µs manifest GET here); without one it calls the one matching handler directly.
  const routeRequest = app.fetch;
  app.fetch = (request, env, executionContext) => {
    const bindings = env as Env['Bindings'];
    bindings.notes = observe(bindings, live().trustedProxies, sink);
    const refusal = headerRefusal(bindings.incoming);
    return refusal ? renderError(refusal) : routeRequest(request, bindings, executionContext);
  };
  app.onError((error, c) => errorResponse(concealed(error, c.get('access'), auth !== null), c, logger));
  // Probes first: they answer on every listener, a redirecting one included, without credentials.
  addHealthRoutes(app, options.ready);
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
  /** Routes a request; a routing failure is kept until we know whom to tell what. */
  const routeOf = (c: Ctx, path: string, current: Live) => {
    const info = requestInfo(c, current.trustedProxies);
    try {
      const context = { boundRepository: options.boundRepository, mirrors, baseDomain: current.baseDomain, keys: current.keys };
      const resolved = route(path, info.host, context, mirrors ? { ns: c.req.query('ns') ?? null } : {});
      if (resolved?.repoKey) c.env.notes.repository = resolved.repoKey;
      return { info, resolved, failure: null };
    } catch (failure) {
      return { info, resolved: null, failure };
    }
  };
  /** A host naming no repository is answered naming only the hosts the caller may read in. */
  const routingFailure = (failure: unknown, readable: (key: string) => boolean, current: Live): unknown => {
    const host = failure instanceof RegistryError && failure.code === 'NAME_UNKNOWN' ? (failure.detail as { host?: string } | null)?.host : undefined;
    if (host === undefined || !current.baseDomain) return failure;
    return unknownHost(host, current.repositories.keys.filter(readable), current.baseDomain);
  };
  const registry = async (c: Ctx) => {
    const current = live();
    const { info, resolved, failure } = routeOf(c, c.req.path, current);
    const gate = await openGate(c, auth, info, resolved);
    if (failure) {
      const access = gate.requireCredentials();
      throw routingFailure(failure, (key) => access.readsSomething(key), current);
    }
    if (!resolved) throw new RegistryError('NAME_UNKNOWN', { message: `no registry endpoint at ${c.req.path}`, detail: { path: c.req.path } });
    if (current.offload) c.set('offload', current.offload);
    // Behind a proxy that reports the client's origin, Location and Link name it (as Distribution).
    return await dispatch(c, info.reported ? { ...resolved, prefix: `${info.origin}${resolved.prefix}` } : resolved, current.repositories, gate);
  };
  // The token service, matched before repository routing (`token` and `auth` are reserved keys).
  // It reads credentials itself: a login checks the database, not the server's snapshot.
  const tokenService = async (c: Ctx) => {
    if (!auth) throw new RegistryError('UNSUPPORTED', { status: 404, message: 'authentication is off (auth.enabled: false): no tokens are needed' });
    const current = live();
    const { info, resolved, failure } = routeOf(c, c.req.path.replace(/\/(token|auth)$/, '/'), current);
    if (failure || !resolved) throw routingFailure(failure, () => false, current);
    const context = { auth, route: resolved, address: info.address, host: info.host, secure: info.secure, proxied: info.proxied };
    return c.req.path.endsWith('/auth') ? authEntry(c, context) : tokenEndpoint(c, context);
  };
  app.all('/v2/token', tokenService);
  app.all('/api/docker/:key/v2/token', tokenService);
  app.all('/api/docker/:key/v2/auth', tokenService);
  if (options.serveMetrics) {
    app.get('/metrics', async (c) => {
      (await openGate(c, auth, requestInfo(c, live().trustedProxies), null)).requireAdmin('metrics');
      return new Response(await metrics.render(), { headers: { 'Content-Type': metrics.contentType } });
    });
  }
  app.get('/api/setup/:key', async (c) => {
    const key = c.req.param('key');
    const current = live();
    const { repositories } = current;
    const gate = await openGate(c, auth, requestInfo(c, current.trustedProxies), null);
    const access = gate.requireCredentials();
    if (!repositories.find(key) || !access.readsSomething(key)) {
      if (access.principal.kind === 'anonymous' && auth) gate.requireAdmin(`setup of ${key}`);
      throw unknownRepository(key, repositories, gate);
    }
    return new Response(current.setup(key, { showUpstream: access.admin }), { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
  app.get('/api/proxy-config/:server', async (c) => {
    const current = live();
    (await openGate(c, auth, requestInfo(c, current.trustedProxies), null)).requireAdmin('proxy configuration');
    const text = current.proxyConfig(c.req.param('server'), c.req.query('method'));
    if (text === null) throw new RegistryError('UNSUPPORTED', { status: 400, message: 'expected /api/proxy-config/nginx|apache?method=subdomain|port|path' });
    return new Response(text, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
  artifactoryRoutes(app, { live, auth });
  promoteRoute(app, { live, auth });
  imageInfoRoutes(app, { live, auth });
  searchRoute(app, { live, auth });
  repositoriesRoute(app, { live, auth });
  adminRoutes(app, { live, auth, collectGarbage: options.collectGarbage });
  refuseOtherMethods(app);
  app.all('/v2', registry);
  app.all('/v2/*', registry);
  app.all('/api/docker/*', registry);
  app.notFound((c) => errorResponse(new RegistryError('NAME_UNKNOWN', { message: `no endpoint at ${c.req.path}; the registry API is under /v2/`, detail: { path: c.req.path } }), c, logger));
  return app;
}

/**
 * A method that the routes registered so far do not take on a path they serve is answered 405
 * with Allow, as on the registry routes, not "no endpoint here" (nor, below /api/docker/, by the
 * registry's catch-all). Each route is tried before this; HEAD goes where GET does (Hono).
 */
function refuseOtherMethods(app: Hono<Env>): void {
  const served = new Map<string, Set<string>>();
  for (const { path, method } of app.routes) served.set(path, (served.get(path) ?? new Set()).add(method));
  for (const [path, methods] of served) {
    if (methods.has('ALL')) continue;
    const allowed = methods.has('GET') ? [...methods, 'HEAD'] : [...methods];
    app.all(path, (c) => {
      throw unsupportedMethod(c.req.method, allowed);
    });
  }
}

/**
 * The app of the metrics listener (config metrics: an address of its own, as Distribution's debug
 * address): /metrics without credentials, for a scraper on a private network, and the probes.
 */
export function createMetricsApp(options: { metrics: Metrics; ready: () => Promise<Readiness> }): Hono<Env> {
  const app = new Hono<Env>();
  addHealthRoutes(app, options.ready);
  app.get('/metrics', async () => new Response(await options.metrics.render(), { headers: { 'Content-Type': options.metrics.contentType } }));
  return app;
}
