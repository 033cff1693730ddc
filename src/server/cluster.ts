import cluster, { type Worker } from 'node:cluster';
import { openAccessControl } from '../access-control.js';
import { loadSigningKey } from '../auth/keys.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { collectPolicy, openConfiguredStore } from '../storage.js';
import { periodicCollection } from '../store/gc.js';
import { certificateNames, ensureSelfSigned } from '../tls/self-signed.js';
import { openAcme } from './certificates.js';
import { PrimaryHub } from './ipc.js';
import { serveSharedState } from './primary-state.js';
import type { BreakerStates } from './shared-state.js';
import { classify, inEffect, logReload } from './reload.js';

// workers > 1: node:cluster. The primary does what must happen once, before any worker serves:
// the store's start-up recovery (tmp/, interrupted upload finishes) and migrations, Wharf's own
// certificate and token signing key, the first admin, ACME orders and renewals, and the periodic
// garbage collection. Then it forks the workers (server/worker.ts), which share the listening
// sockets, and holds the state they share (primary-state.ts). It relays reloads (a configuration
// it has validated) and shutdowns to every worker, and starts a new worker when one dies.

/** A worker that dies sooner than this after its start is started again only after this long. */
const restartBackoffMs = 1_000;

export interface ClusterServer {
  urls: string[];
  initialAdminPassword: string | null;
  /** Applies a validated configuration in every worker; logs what it applied once all have. */
  reload(config: Config): Promise<void>;
  /** Stops every worker gracefully (each lets its requests finish), then what the primary holds. */
  close(): Promise<void>;
}

export interface ClusterOptions {
  workers: number;
  logger: Logger;
}

/** What a worker starts with; `breakers`: the circuit breakers' state now (a replacement starts with it). */
export type WorkerStart = { config: Config; acme: { cert: string; key: string } | null; workers: number; breakers: BreakerStates };

export async function startCluster(config: Config, { workers, logger }: ClusterOptions): Promise<ClusterServer> {
  const warn = (message: string) => logger.warn(message);
  const acme = await openAcme(config, logger);
  if (acme && !acme.current) logger.info(`ACME: no certificate yet for ${config.acme!.domains.join(', ')}; serving Wharf's self-signed one until the order completes`);
  // Made once here, so that workers only read them (each making its own would race).
  if (config.listeners.some((listener) => listener.tls === 'self-signed' || listener.tls === 'acme')) await ensureSelfSigned(config.certsDir, certificateNames(config));
  if (config.auth.enabled) await loadSigningKey(config.certsDir);
  const store = await openConfiguredStore(config, { recover: true, log: warn, processes: workers + 1 });
  const access = await openAccessControl(config, store.metadata.accounts, { log: (message) => logger.info(message) });
  const collector = periodicCollection(store, collectPolicy(config), { interval: config.gc.interval, log: warn });
  const hub = new PrimaryHub<Worker>();
  // On PostgreSQL the database counts login attempts, for every node (server.ts).
  const shared = serveSharedState(hub, { acme, throttle: config.storage.metadata.driver === 'postgres' ? null : config.auth.throttle });
  let current = config;
  let stopping = false;
  hub.answer('start', () => ({ config: current, acme: acme?.current ?? null, workers, breakers: shared.breakers() }) satisfies WorkerStart);

  const ready = new Map<Worker, string[]>();
  let started!: (urls: string[]) => void;
  let failed!: (error: Error) => void;
  const allReady = new Promise<string[]>((resolve, reject) => { started = resolve; failed = reject; });
  let serving = false;
  hub.hear('ready', (body, worker) => {
    ready.set(worker, (body as { urls: string[] }).urls);
    if (serving) logger.info(`worker ${worker.process.pid} serves in place of the one that stopped`);
    if (!serving && ready.size === workers) {
      serving = true;
      started(ready.get(worker)!);
    }
  });

  const fork = (): void => {
    const worker = cluster.fork();
    const bornAt = Date.now();
    hub.attach(worker);
    worker.once('exit', (code, signal) => {
      shared.forget(worker);
      ready.delete(worker);
      if (stopping) return;
      const cause = signal ? `signal ${signal}` : `exit code ${code}`;
      // One that cannot start (a listener that cannot bind) stops the whole server, as one process would.
      if (!serving) return failed(new Error(`a worker stopped while starting (${cause})`));
      logger.error(`worker ${worker.process.pid} stopped (${cause}); starting another`);
      setTimeout(fork, Date.now() - bornAt < restartBackoffMs ? restartBackoffMs : 0);
    });
  };
  for (let i = 0; i < workers; i++) fork();

  const stopWorkers = async (): Promise<void> => {
    stopping = true;
    const exits = Object.values(cluster.workers ?? {}).map((worker) => new Promise<void>((resolve) => {
      if (!worker || worker.isDead()) return resolve();
      worker.once('exit', () => resolve());
      hub.tell(worker, 'shutdown', null);
    }));
    await Promise.all(exits);
  };
  const release = async (): Promise<void> => {
    acme?.close();
    await collector.stop();
    await access.close();
    await store.close();
  };

  let urls: string[];
  try {
    urls = await allReady;
  } catch (error) {
    await stopWorkers();
    await release();
    throw error;
  }
  acme?.start();
  const initialAdminPassword = await access.createFirstAdmin();
  return {
    urls,
    initialAdminPassword,
    async reload(requested) {
      const report = classify(current, requested);
      current = inEffect(current, requested);
      // Logged here, once, when every worker has it (not once per worker).
      const answers = await hub.gather('reload', requested, 'reloaded') as { error?: string }[];
      const refusals = answers.flatMap((answer) => (answer.error === undefined ? [] : [answer.error]));
      if (refusals.length < answers.length || answers.length === 0) logReload(logger, report);
      if (refusals.length) logger.error(`reload refused by ${refusals.length} of ${answers.length} workers: ${refusals[0]}; they still serve the previous configuration`);
    },
    async close() {
      await stopWorkers();
      await release();
    },
  };
}
