#!/usr/bin/env node
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from './config/errors.js';
import { loadConfig, type Overrides } from './config/load.js';
import { gcCommand } from './cli/gc.js';
import { promoteCommand } from './cli/promote.js';
import type { Config } from './config/types.js';
import { UsageError } from './cli/common.js';
import { tokenCommand } from './cli/tokens.js';
import { userCommand } from './cli/users.js';
import { createLogger, type Logger } from './log/logger.js';
import { logProcessWarnings } from './log/warnings.js';
import { RegistryError } from './oci/errors.js';
import { shutdownGraceMs, startServer } from './server.js';
import { openAcme } from './server/certificates.js';
import { startCluster } from './server/cluster.js';
import { runWorker } from './server/worker.js';
import { bannerLines } from './server/banner.js';
import { repositoryList, setupText } from './setup/instructions.js';
import { defaultMethod, methods, proxyConfig, proxyServers, type ProxyServer } from './proxyconf/index.js';
import { proxyPlan, type Method } from './proxyconf/sites.js';
import { acmeCertificateFile, issuedAcmeCertificate } from './tls/acme.js';
import { certificateNames, ensureSelfSigned, forgetServerCertificate } from './tls/self-signed.js';
import { trustInstructions } from './tls/trust.js';
import { version } from './version.js';

const usage = `wharf — an edge container registry

Usage:
  wharf serve [--config FILE] [--listen ADDR:PORT] [--data DIR]
  wharf certs [--config FILE] [--regenerate]
  wharf setup [REPOSITORY] [--config FILE]
  wharf proxy-config nginx|apache [--method subdomain|port|path] [--out DIR] [--config FILE]
  wharf user add NAME [--groups G1,G2] [--admin] --password-stdin [--config FILE]
  wharf user passwd NAME --password-stdin | user remove NAME | user list   [--config FILE]
  wharf token create --user NAME [--scope repository:KEY/IMAGE:pull,push …] [--expires 90d] [--description TEXT]
  wharf token list | token revoke ID   [--config FILE]
  wharf gc [--dry-run] [--config FILE]
  wharf promote REPO IMAGE[:TAG] TARGET-REPO [--target-image NAME] [--target-tag TAG] [--copy] [--config FILE]
  wharf --version
  wharf --help                 (or COMMAND --help)

Commands:
  serve        start the registry (the default config is config/wharf.yaml)
  certs        create Wharf's CA and server certificate if needed, and print how to trust them;
               with tls mode acme, show the ACME certificate and when it renews
  setup        print the docker and podman commands that reach a repository ("Set Me Up");
               without REPOSITORY, list the repositories
  proxy-config write nginx or Apache configuration for running Wharf behind them
               (default --out: nginx/ or apache/; default method: subdomain with baseDomain, else path)
  user         manage users (passwords on standard input); works while the server runs
  token        create, list and revoke access tokens (printed once; usable as a docker login password)
  gc           collect garbage now: untagged manifests, unreferenced blobs, expired uploads
               (--dry-run: count what would go, change nothing); safe while the server runs
  promote      move (or --copy) a tag, or without :TAG every tag, of an image to a local repository,
               metadata only, as POST /api/docker/REPO/v2/promote does; safe while the server runs

Options for serve:
  --config FILE       configuration file (YAML)
  --listen ADDR:PORT  replace the first listener's address and port (port 0: any free port)
  --data DIR          replace dataDir
`;

const commands = ['serve', 'certs', 'setup', 'proxy-config', 'gc', 'promote', 'user', 'token'];

/** Every command (subcommands too: `user add --help`) answers --help (or -h) with the usage rather than a parser message. */
function wantsHelp(command: string, args: string[]): boolean {
  return commands.includes(command) && (args.includes('--help') || args.includes('-h'));
}

/** Operational log lines on stderr, in the configured format. */
function stderrLogger(config: Config): Logger {
  return createLogger({ format: config.log.format, write: (line) => process.stderr.write(line) });
}

/** The config file, read and validated; from then on process warnings are log lines in its format. */
function configured(file: string | undefined, overrides: Overrides = {}): Config {
  const config = loadConfig(file ?? defaultConfigPath(), overrides);
  logProcessWarnings(stderrLogger(config));
  return config;
}

function defaultConfigPath(): string {
  const local = resolve('config/wharf.yaml');
  return existsSync(local) ? local : fileURLToPath(new URL('../../config/wharf.yaml', import.meta.url));
}

/** What serve runs: one process, or a cluster of workers behind a primary. */
interface Serving {
  urls: string[];
  initialAdminPassword: string | null;
  reload(config: Config): Promise<unknown>;
  close(): Promise<void>;
}

/** workers: auto is one per core; 1 (or one core) serves from this process alone. */
function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

async function serve(args: string[]): Promise<void> {
  // A worker forked by the primary: it asks the primary for its configuration.
  if (cluster.isWorker) return runWorker();
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, listen: { type: 'string' }, data: { type: 'string' } },
  });
  const configFile = resolve(values.config ?? defaultConfigPath());
  const overrides = { listen: values.listen, data: values.data };
  const config = configured(configFile, overrides);
  const logger = stderrLogger(config);
  const workers = workerCount(config);
  let server: Serving;
  try {
    server = workers > 1 ? await startCluster(config, { workers, logger }) : await startServer(config, { logger });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    logger.error(`not started: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  // SIGHUP: read the file again and reload; a bad file is refused and the running config stays.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      logger.info(`SIGHUP: reloading ${configFile}`);
      try {
        await server.reload(loadConfig(configFile, overrides));
      } catch (error) {
        const reason = error instanceof ConfigError ? `config error: ${error.message}` : error instanceof Error ? error.message : String(error);
        logger.error(`reload refused: ${reason}; still serving the previous configuration`);
      }
    });
  });
  const stop = (signal: string) => {
    logger.info(`${signal}: shutting down; requests in flight have up to ${shutdownGraceMs / 1000} s to finish`);
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // What serve says it serves goes to standard output, as the one-time admin password does; only
  // now, with the signal handlers in place: a supervisor (or a test) that signals as soon as it
  // reads "listening on" would otherwise kill it by the signal's default action (seen under load).
  const said = createLogger({ format: config.log.format, write: (line) => process.stdout.write(line) });
  if (server.initialAdminPassword) console.log(`wharf: the first user is admin, password ${server.initialAdminPassword} (shown once; log in with: docker login ${hostOf(server.urls[0]!)} -u admin)`);
  for (const line of bannerLines(config, server.urls, { version, configFile, workers })) said.info(line);
}

function hostOf(url: string): string {
  return new URL(url).host;
}

async function certs(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, regenerate: { type: 'boolean' } } });
  const config = configured(values.config);
  const acme = await openAcme(config, stderrLogger(config));
  if (acme) {
    process.stdout.write(acme.describe());
    if (!config.listeners.some((listener) => listener.tls === 'self-signed')) return;
    process.stdout.write('\n');
  }
  if (values.regenerate) await forgetServerCertificate(config.certsDir);
  const material = await ensureSelfSigned(config.certsDir, certificateNames(config));
  process.stdout.write(trustInstructions(config, await readFile(material.caPath, 'utf8'), material.caPath));
  if (material.issued) {
    process.stdout.write(`\nIssued a new server certificate: ${material.certPath}\n`
      + 'A running wharf serve with this certsDir serves it from the next connection: it watches the file.\n'
      + '(Where file events do not arrive, as on some network filesystems: kill -HUP <pid of wharf serve>.)\n');
  }
}

async function setup(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' } } });
  const config = configured(values.config);
  const key = positionals[0];
  if (key === undefined) {
    process.stdout.write(repositoryList(config));
    return;
  }
  const selfSigned = config.listeners.some((listener) => listener.tls === 'self-signed');
  const text = setupText(config, key, selfSigned ? join(config.certsDir, 'ca.crt') : null, { authentication: config.auth.enabled });
  if (!text) {
    process.stderr.write(`wharf: no repository ${JSON.stringify(key)}; configured: ${Object.keys(config.repositories).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  process.stdout.write(text);
}

async function writeProxyConfig(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, method: { type: 'string' }, out: { type: 'string' } } });
  const config = configured(values.config);
  const server = positionals[0] as ProxyServer;
  const method = (values.method ?? defaultMethod(config)) as Method;
  if (!proxyServers.includes(server) || !methods.includes(method)) {
    process.stderr.write(`wharf: proxy-config takes ${proxyServers.join(' or ')} and --method ${methods.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const out = resolve(values.out ?? server);
  await mkdir(out, { recursive: true });
  const file = join(out, 'wharf.conf');
  const acmeCertificate = issuedAcmeCertificate(config);
  await writeFile(file, proxyConfig(config, server, method, acmeCertificate));
  process.stdout.write(`wharf: wrote ${file} (${server}, ${method} method)\n`);
  const plan = proxyPlan(config, method, acmeCertificate);
  if (!plan.upstreamConfigured) {
    process.stderr.write(`wharf: warning: the configuration has no plain listener (tls none, no repository) for the proxy to forward to; the site forwards to http://${plan.upstream}: add { address: 127.0.0.1, port: 5000 } to listeners\n`);
  }
  // A port binding's site keeps its port (clients' image names stay), so on one host it and Wharf's listener cannot both bind it.
  const taken = plan.sites.filter((site) => config.listeners.some((listener) => listener.port === site.port));
  if (taken.length > 0) {
    process.stderr.write(`wharf: warning: the sites listen on ports Wharf's own listeners have (${taken.map((site) => `${site.repoKey ?? 'all'} on ${site.port}`).join(', ')}); on one host, move those listeners off them: the proxy forwards to the plain listener\n`);
  }
  if (plan.certificateSource === 'acme') {
    process.stdout.write(`wharf: the proxy serves Wharf's ACME certificate ${plan.certificate}; reload the proxy after each renewal (wharf certs says when)\n`);
  }
  if (plan.acme && plan.certificateSource === 'self-signed') {
    process.stderr.write(`wharf: warning: Wharf has no ACME certificate yet (${acmeCertificateFile(config.certsDir)}): the site serves Wharf's self-signed one and passes the CA's challenges to Wharf; once wharf certs shows the certificate, run proxy-config again and reload the proxy\n`);
  }
  if (plan.certificateSource === 'self-signed') {
    // The snippet names Wharf's certificate: make sure it is there, so the proxy's config test passes now.
    const existed = existsSync(join(config.certsDir, 'server.crt'));
    const material = await ensureSelfSigned(config.certsDir, certificateNames(config));
    process.stdout.write(existed
      ? `wharf: the proxy serves Wharf's certificate ${join(config.certsDir, 'server.crt')}; clients trust ${material.caPath} (wharf certs says how)\n`
      : `wharf: created Wharf's CA and server certificate in ${config.certsDir} for the proxy; clients trust ${material.caPath} (wharf certs says how)\n`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`wharf ${version}\n`);
    return;
  }
  if (wantsHelp(command, rest)) {
    process.stdout.write(usage);
    return;
  }
  if (command === 'serve') return serve(rest);
  if (command === 'certs') return certs(rest);
  if (command === 'setup') return setup(rest);
  if (command === 'proxy-config') return writeProxyConfig(rest);
  if (command === 'gc') return gcCommand(rest, configured);
  if (command === 'promote') return promoteCommand(rest, configured);
  if (command === 'user') return userCommand(rest, configured);
  if (command === 'token') return tokenCommand(rest, configured);
  process.stderr.write(`wharf: unknown command ${JSON.stringify(command)}\n\n${usage}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError && error.path.startsWith('--') && error.path !== '--config') {
    process.stderr.write(`wharf: ${error.message}\n`);
  } else if (error instanceof ConfigError) {
    process.stderr.write(`wharf: config error: ${error.message}\n`);
  } else if (error instanceof UsageError) {
    process.stderr.write(`wharf: ${error.message}\n\n${usage}`);
  } else if (error instanceof RegistryError) {
    process.stderr.write(`wharf: ${error.message}\n`);
  } else if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`wharf: ${error.message}\n\n${usage}`);
  } else {
    process.stderr.write(`wharf: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  process.exit(2);
});
