import { createServer, type Server } from 'node:http';
import { createSecureServer, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { AggregatorRegistry, Registry, type PrometheusContentType } from 'prom-client';
import { openAccessControl, type AccessControl } from './access-control.js';
import type { LoginHooks } from './auth/service.js';
import { sharedLoginAttempts, throttleOptions } from './auth/throttle.js';
import { isLoopbackAddress } from './config/auth.js';
import type { Config } from './config/types.js';
import { servesByPath } from './config/validate.js';
import { unreachedRepositories } from './setup/access.js';
import { BlobDownloads } from './cache/downloads.js';
import { createApp, createMetricsApp } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { answerClientErrors, maxHeaderBytes, requestErrorHandler } from './http/refusals.js';
import { createLogger, type Logger } from './log/logger.js';
import type { Repository } from './repos/repository.js';
import { RepositorySet } from './repos/set.js';
import { ListenerCertificates, openAcme } from './server/certificates.js';
import { listen, urlOf } from './server/listen.js';
import { liveState, withPorts } from './server/live.js';
import { readiness } from './server/readiness.js';
import { classify, inEffect, logReload, type ReloadReport } from './server/reload.js';
import { collectPolicy, openConfiguredStore, registerRepositories } from './storage.js';
import { periodicCollection, type CollectSummary } from './store/gc.js';
import type { Store } from './store/index.js';
import type { LifecycleHooks } from './store/lifecycle.js';
import type { AcmeAnswers, AcmeClock } from './tls/acme.js';
import type { SharedState } from './server/shared-state.js';
import { answerAlpnChallenges } from './tls/alpn-challenge.js';

/** How long a shutdown waits for transfers in flight before it cuts them. */
export const shutdownGraceMs = 30_000;

export interface RunningServer {
  /** One base URL per listener, with the port actually bound (port 0 picks a free one). */
  urls: string[];
  /** The CA to trust when a listener serves a self-signed certificate. */
  caPath: string | null;
  /** The metrics listener's URL, when config.metrics gives /metrics an address of its own. */
  metricsUrl: string | null;
  /**
   * Takes a new configuration without dropping connections: repositories, routing, trusted
   * proxies, the access log, certificates and (through the reload hooks) permissions. What binds
   * sockets or locates data is reported as needing a restart and keeps its old value. A hook that
   * refuses the configuration rejects the reload, and the old configuration stays whole.
   */
  reload(config: Config): Promise<ReloadReport>;
  /** On the first start with authentication on: the generated admin password (also in dataDir/initial-admin-password). */
  initialAdminPassword: string | null;
  /** Swaps the permission targets for those of `config` (as a reload does), without a restart. */
  updatePermissions(config: Config): void;
  /** Stops accepting, lets requests in flight finish (up to graceMs), then releases everything. */
  close(options?: { graceMs?: number }): Promise<void>;
  /** Runs a garbage collection now (for an admin endpoint, which must authorize the caller). */
  collectGarbage(options?: { dryRun?: boolean }): Promise<CollectSummary>;
  /** Whether pushes can succeed now (storage writable, database reachable), as /readyz reports. */
  storageHealth(): Promise<{ writable: boolean; reason?: string }>;
}

/** Something else that takes a new configuration on reload (access control's permissions). */
export interface ReloadHook {
  update(config: Config): void | Promise<void>;
}

export interface ServerOptions {
  /** Where access-log lines go; defaults to stdout when the config enables the access log. */
  writeLog?: (text: string) => void;
  /** Operational messages (upstream trouble, certificates); defaults to stderr in config.log.format. */
  logger?: Logger;
  /** Told about every reloaded configuration before it takes effect; one that throws refuses it. */
  reloadHooks?: readonly ReloadHook[];
  /** Audit lines (logins, pushes, deletes, denials); defaults to the operational log. */
  audit?: (line: string) => void;
  /** The clock of tokens and login throttling (tests move it). */
  now?: () => number;
  /** Login hooks (tests hold parallel logins with them). */
  loginHooks?: LoginHooks;
  /** Bytes each repository holds, for wharf_storage_bytes; defaults to the metadata's blob sizes. */
  storageBytes?: () => Record<string, number> | Promise<Record<string, number>>;
  /** The store's clock (tests move it past gc.grace). */
  storageNow?: () => number;
  /** Blob lifecycle hooks (tests force interleavings with them). */
  storageHooks?: LifecycleHooks;
  /** The clock of ACME renewals and retries (tests move it). */
  acmeClock?: AcmeClock;
  /**
   * As one worker of several (server/cluster.ts): the state they share, through the primary. The
   * primary has done what happens once (recovery, migrations, certificates, the first admin, ACME
   * orders, periodic collection), so a worker does none of it.
   */
  worker?: SharedState;
}

/** Opens the store, builds the repositories and the app, and starts every listener. */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ format: config.log.format, write: (line) => process.stderr.write(line) });
  const writeLog = options.writeLog ?? ((text: string) => process.stdout.write(text));
  const warn = (message: string) => logger.warn(message);
  const worker = options.worker ?? null;
  const ownAcme = worker ? null : await openAcme(config, logger, options.acmeClock);
  const acme: AcmeAnswers | null = worker ? worker.acme : ownAcme;
  if (ownAcme && !ownAcme.current) logger.info(`ACME: no certificate yet for ${config.acme!.domains.join(', ')}; serving Wharf's self-signed one until the order completes`);
  const store: Store = await openConfiguredStore(config, {
    recover: !worker, log: warn, ...(worker ? { sessionLocks: worker.sessionLocks, processes: worker.workers + 1 } : {}), ...(options.storageNow ? { now: options.storageNow } : {}), ...(options.storageHooks ? { hooks: options.storageHooks } : {}),
  });
  // Once per node: workers start from the same config.
  const unreached = worker ? [] : unreachedRepositories(config);
  if (unreached.length > 0) warn(`warning: no listener reaches ${unreached.join(', ')}: give each a port binding (listeners[].repository) or add a listener that serves by path`);
  // Access control's messages: its warnings say so ("warning: …").
  const authLog = (message: string) => (message.startsWith('warning: ') ? logger.warn(message) : logger.info(message));
  // Login attempts: on PostgreSQL every node (and each of its workers) counts them in the
  // database; the workers of a node on SQLite, in its primary.
  const loginAttempts = config.storage.metadata.driver === 'postgres'
    ? sharedLoginAttempts(store.metadata.loginAttempts, throttleOptions(config.auth.throttle, options.now ?? Date.now))
    : worker?.loginAttempts;
  let access: AccessControl;
  let certificates: ListenerCertificates;
  try {
    access = await openAccessControl(config, store.metadata.accounts, {
      log: authLog, ...(options.audit ? { audit: options.audit } : {}), ...(options.now ? { now: options.now } : {}), ...(options.loginHooks ? { loginHooks: options.loginHooks } : {}),
      ...(loginAttempts ? { loginAttempts } : {}),
    });
    certificates = await ListenerCertificates.open(config, logger, acme).catch(async (error: unknown) => {
      await access.close();
      throw error;
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  /** Permissions follow every reload, before anything else of it takes effect. */
  const hooks: ReloadHook[] = [{ update: (next) => access.service?.update(next.permissions) }, ...(options.reloadHooks ?? [])];
  const caPath = () => certificates.caPath;
  // One set of downloads for the server's life: reloads keep single-flight and the memory window
  // (a worker's share of it: downloads.memory holds for all workers together).
  const downloads = new BlobDownloads(store.blobs, { memory: Math.floor(config.downloads.memory / (worker?.workers ?? 1)), ...(worker ? { coordinator: worker.fills } : {}) });
  // In a worker, an AggregatorRegistry: constructing one is what makes prom-client answer the
  // primary's requests for this worker's metrics.
  const registry = worker ? new AggregatorRegistry<PrometheusContentType>() : new Registry();
  const metrics = createMetrics(registry, {
    repositories: () => current.repositories,
    // Virtual repositories hold nothing of their own: their members are counted.
    storageBytes: options.storageBytes ?? (async () => Object.fromEntries(await Promise.all(current.repositories.all().filter((repository) => repository.kind !== 'virtual')
      .map(async ({ key }) => [key, await store.metadata.blobLinks.repositoryBytes(key)])))),
    tagsRemoved: () => store.metadata.tags.removedByLimit(),
    openUploads: async () => (await store.metadata.uploads.all()).length,
    downloadMemory: { held: () => downloads.memoryHeld, limit: downloads.memoryLimit },
    ...(worker ? { render: worker.metrics } : {}),
  });
  if (worker) AggregatorRegistry.setRegistries([registry]);
  const build = async (next: Config, previous?: { set: RepositorySet; config: Config }) => {
    await registerRepositories(store, next);
    return RepositorySet.fromConfig(next, store, warn, { downloads, observeUpstream: (key) => metrics.upstream(key), ...(previous ? { previous } : {}), ...(worker ? { shared: worker.upstream } : {}) });
  };
  let current = { config, repositories: await build(config) };
  // Workers collect on demand only (the admin route): the primary runs the periodic collection.
  const collector = periodicCollection(store, collectPolicy(config), { interval: worker ? 0 : config.gc.interval, log: warn });
  /** Repositories a reload replaced: closed with the server, as requests may still hold them. */
  const retired: Repository[] = [];
  const ports: number[] = [];
  let live = liveState({ ...current, writeLog, caPath });
  const servers: Server[] = [];
  const urls: string[] = [];
  const ready = readiness({ store, servers: () => servers });
  let metricsUrl: string | null = null;
  const httpsPort = () => ports[config.listeners.findIndex((listener) => listener.tls !== 'none' && servesByPath(listener))]!;
  // HTTP/2 sessions stay open when idle; they are closed (gracefully) on shutdown.
  const sessions = new Set<Http2Session>();
  // Every connection, to cut those still open when the shutdown limit is reached: a TLS
  // listener's HTTP/1.1 connections are neither HTTP/2 sessions nor known to closeAllConnections.
  const sockets = new Set<Socket>();
  const track = (server: Server) => server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let initialAdminPassword: string | null = null;
  try {
    for (const [index, listener] of config.listeners.entries()) {
      const app = createApp({
        live: () => live,
        logger,
        auth: access.service,
        boundRepository: listener.repository,
        mirrors: listener.mirrors,
        redirectToPort: listener.redirectToHttps ? httpsPort : null,
        acmeChallenge: acme ? (token) => acme.keyAuthorization(token) : null,
        metrics, serveMetrics: config.metrics === null, ready,
        collectGarbage: (collectOptions) => collector.collect(collectOptions),
      });
      const serverOptions = certificates.serverOptions(index);
      // TLS listeners speak HTTP/2 and HTTP/1.1, chosen by ALPN (Go clients pick h2).
      const requests = getRequestListener(app.fetch, { errorHandler: requestErrorHandler(logger) });
      const server = (serverOptions
        ? createSecureServer({ ...serverOptions, allowHTTP1: true }, requests)
        : createServer({ maxHeaderSize: maxHeaderBytes, requireHostHeader: false }, requests)) as unknown as Server;
      // A TLS listener's HTTP/1.1 connections are parsed with the server's maxHeaderSize property.
      Object.assign(server, { maxHeaderSize: maxHeaderBytes });
      answerClientErrors(server, logger);
      // Large layers take minutes: no whole-request deadline, but headers must arrive promptly.
      server.requestTimeout = 0;
      server.headersTimeout = 60_000;
      server.on('session', (session: Http2Session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
      });
      if (serverOptions) certificates.attach(index, server as unknown as TlsServer);
      if (listener.tls === 'acme' && config.acme!.challenge === 'tls-alpn-01') answerAlpnChallenges(server as unknown as TlsServer, (name) => acme!.alpnCertificate(name));
      servers.push(track(server));
      const address = await listen(server, listener, index);
      urls.push(urlOf(address, listener.tls !== 'none'));
      ports.push(address.port);
    }
    if (config.metrics) {
      const app = createMetricsApp({ metrics, ready });
      const server = createServer({ maxHeaderSize: maxHeaderBytes }, getRequestListener(app.fetch));
      servers.push(track(server));
      const bound = await listen(server, config.metrics, 'metrics');
      metricsUrl = urlOf(bound, false);
      if (!isLoopbackAddress(config.metrics.address)) {
        logger.warn(`warning: the metrics listener ${config.metrics.address}:${bound.port} is beyond loopback and asks no credentials: whoever reaches it reads repository keys and upstream hosts in /metrics; bind it to 127.0.0.1 or a private address only scrapers reach`);
      }
    }
    live = liveState({ config: withPorts(config, ports), repositories: current.repositories, writeLog, caPath });
    ownAcme?.start();
    if (!worker) initialAdminPassword = await access.createFirstAdmin();
  } catch (error) {
    ownAcme?.close();
    certificates.close();
    servers.forEach((server) => server.close());
    await access.close();
    await collector.stop();
    await current.repositories.close();
    await store.close();
    throw error;
  }
  return {
    urls,
    caPath: certificates.caPath,
    metricsUrl,
    initialAdminPassword,
    updatePermissions: (next) => access.service?.update(next.permissions),
    collectGarbage: (collectOptions) => collector.collect(collectOptions),
    storageHealth: () => store.health(),
    async reload(requested) {
      const report = classify(current.config, requested);
      const next = inEffect(current.config, requested);
      for (const hook of hooks) await hook.update(next);
      const repositories = report.applied.some((path) => path.startsWith('repositories'))
        ? await build(next, { set: current.repositories, config: current.config })
        : current.repositories;
      retired.push(...current.repositories.all().filter((repository) => repositories.find(repository.key) !== repository));
      current = { config: next, repositories };
      live = liveState({ config: withPorts(next, ports), repositories, writeLog, caPath });
      await certificates.reload(next);
      // A worker's primary says it once for all of them (server/cluster.ts).
      if (!worker) logReload(logger, report);
      return report;
    },
    async close({ graceMs = shutdownGraceMs } = {}) {
      ownAcme?.close();
      certificates.close();
      const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        for (const session of sessions) session.close();
      })));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
      if ((await Promise.race([closed, deadline])) === 'late') {
        for (const socket of sockets) socket.destroy();
        await closed;
      }
      // A download whose clients are gone commits (or cleans up) before the store closes, within the same grace.
      await Promise.race([downloads.idle(), deadline]);
      clearTimeout(timer);
      await access.close();
      await collector.stop();
      await Promise.all([current.repositories.close(), ...retired.map((repository) => repository.close?.())]);
      await store.close();
    },
  };
}
