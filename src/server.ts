import { createServer, type Server } from 'node:http';
import { createSecureServer, type Http2Session, type SecureServerOptions } from 'node:http2';
import type { Server as TlsServer } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { acmeSettingsPath } from './config/acme.js';
import type { Config, ListenerConfig } from './config/types.js';
import { accessLog } from './http/accesslog.js';
import { createApp, type Live } from './http/app.js';
import { answerClientErrors, maxHeaderBytes, requestErrorHandler } from './http/refusals.js';
import { createLogger, type Logger } from './log/logger.js';
import { RepositorySet } from './repos/set.js';
import { setupText } from './setup/instructions.js';
import { defaultMethod, methods, proxyConfig, proxyServers, type ProxyServer } from './proxyconf/index.js';
import type { Method } from './proxyconf/sites.js';
import { trustedProxies } from './routing/proxies.js';
import { listen, urlOf } from './server/listen.js';
import { openStore } from './store/index.js';
import { AcmeCertificates } from './tls/acme.js';
import { answerAlpnChallenges } from './tls/alpn-challenge.js';
import { CertificateFiles } from './tls/files.js';
import { certificateNames, ensureSelfSigned, type TlsMaterial } from './tls/self-signed.js';

/** How long a shutdown waits for transfers in flight before it cuts them. */
export const shutdownGraceMs = 30_000;

export interface RunningServer {
  /** One base URL per listener, with the port actually bound (port 0 picks a free one). */
  urls: string[];
  /** The CA to trust when a listener serves a self-signed certificate. */
  caPath: string | null;
  /** Stops accepting, lets requests in flight finish (up to graceMs), then releases everything. */
  close(options?: { graceMs?: number }): Promise<void>;
}

export interface ServerOptions {
  /** Where access-log lines go; defaults to stdout when the config enables the access log. */
  writeLog?: (text: string) => void;
  /** Operational messages (upstream trouble, certificates); defaults to stderr in config.log.format. */
  logger?: Logger;
}

/**
 * The TLS settings of a listener: Wharf's own certificate, the ACME one (Wharf's own until the
 * first order completes), or the operator's files chosen by SNI.
 */
async function tlsOptions(listener: ListenerConfig, index: number, selfSigned: TlsMaterial | null, acme: AcmeCertificates | null): Promise<SecureServerOptions | null> {
  if (listener.tls === 'acme') return acme!.current ?? { key: selfSigned!.key, cert: selfSigned!.cert };
  if (listener.tls === 'self-signed') return { key: selfSigned!.key, cert: selfSigned!.cert };
  if (listener.tls !== 'files') return null;
  const files = await CertificateFiles.open(listener.certificates, `listeners[${index}].tls.certificates`);
  return { ...files.defaults, SNICallback: files.sniCallback };
}

/** Opens the store, builds the repositories and the app, and starts every listener. */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ format: config.log.format, write: (line) => process.stderr.write(line) });
  const acme = config.acme ? await AcmeCertificates.open(config.acme, acmeSettingsPath(config), config.certsDir, logger) : null;
  if (acme && !acme.current) logger.info(`ACME: no certificate yet for ${config.acme!.domains.join(', ')}; serving Wharf's self-signed one until the order completes`);
  const store = await openStore(config.dataDir);
  const repositories = RepositorySet.fromConfig(config, store, (message) => logger.warn(message));
  const writeLog = options.writeLog ?? ((text: string) => process.stdout.write(text));
  const requestLog = config.log.access ? accessLog(config.log.format, writeLog) : null;
  const proxies = trustedProxies(config.trustedProxies);
  const tls = config.listeners.some((listener) => listener.tls === 'self-signed' || (listener.tls === 'acme' && !acme!.current))
    ? await ensureSelfSigned(config.certsDir, certificateNames(config))
    : null;
  const servers: Server[] = [];
  const urls: string[] = [];
  // "Set Me Up" names the ports actually bound (port 0 in the config picks one at listen time).
  let bound: Config = config;
  const httpsPort = () => bound.listeners.find((listener) => listener.tls !== 'none')!.port;
  const live: Live = {
    repositories, keys: new Set(repositories.keys), trustedProxies: proxies, baseDomain: config.baseDomain, accessLog: requestLog,
    setup: (key) => setupText(bound, key, tls?.caPath ?? null),
    proxyConfig: (server, method) => {
      const chosen = (method ?? defaultMethod(bound)) as Method;
      return proxyServers.includes(server as ProxyServer) && methods.includes(chosen) ? proxyConfig(bound, server as ProxyServer, chosen) : null;
    },
  };
  // HTTP/2 sessions stay open when idle; they are closed (gracefully) on shutdown.
  const sessions = new Set<Http2Session>();
  try {
    for (const [index, listener] of config.listeners.entries()) {
      const app = createApp({
        live: () => live,
        logger,
        boundRepository: listener.repository,
        redirectToPort: listener.redirectToHttps ? httpsPort : null,
        acmeChallenge: acme ? (token) => acme.keyAuthorization(token) : null,
      });
      const serverOptions = await tlsOptions(listener, index, tls, acme);
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
      // A renewed ACME certificate is served from the next handshake on.
      if (listener.tls === 'acme') {
        acme!.onCertificate((served) => (server as unknown as TlsServer).setSecureContext({ ...serverOptions, ...served }));
        if (config.acme!.challenge === 'tls-alpn-01') answerAlpnChallenges(server as unknown as TlsServer, (name) => acme!.alpnCertificate(name));
      }
      servers.push(server);
      const address = await listen(server, listener, index);
      urls.push(urlOf(address, listener.tls !== 'none'));
      bound = { ...bound, listeners: bound.listeners.map((item, i) => (i === index ? { ...item, port: address.port } : item)) };
    }
    acme?.start();
  } catch (error) {
    acme?.close();
    servers.forEach((server) => server.close());
    await repositories.close();
    store.close();
    throw error;
  }
  return {
    urls,
    caPath: tls?.caPath ?? null,
    async close({ graceMs = shutdownGraceMs } = {}) {
      acme?.close();
      const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        for (const session of sessions) session.close();
      })));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
      if ((await Promise.race([closed, deadline])) === 'late') {
        for (const server of servers) server.closeAllConnections?.();
        for (const session of sessions) session.destroy();
        await closed;
      }
      clearTimeout(timer);
      await repositories.close();
      store.close();
    },
  };
}
