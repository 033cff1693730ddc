import type { Config } from '../config/types.js';
import { createLogger } from '../log/logger.js';
import { logProcessWarnings } from '../log/warnings.js';
import { startServer, type RunningServer } from '../server.js';
import type { WorkerStart } from './cluster.js';
import { WorkerChannel } from './ipc.js';
import { workerState } from './shared-state.js';

// One worker of `wharf serve` with workers > 1 (server/cluster.ts): it asks the primary for the
// configuration, serves it with the state the workers share, and reloads and stops when the
// primary says so. It exits when the primary goes away.

export async function runWorker(): Promise<void> {
  const channel = new WorkerChannel(process);
  // Reloads and a shutdown the primary sends while this worker is still starting are applied
  // once it serves (the configuration it was given may predate them), not dropped.
  let serving!: (server: RunningServer) => void;
  const started = new Promise<RunningServer>((resolve) => { serving = resolve; });
  let reloading: Promise<unknown> = started;
  // The primary logs the outcome once for every worker: each says it has reloaded, or why not.
  channel.on('reload', (body) => {
    reloading = reloading.then(() => started).then((server) => server.reload(body as Config)).then(
      () => channel.tell('reloaded', {}),
      (error: unknown) => channel.tell('reloaded', { error: error instanceof Error ? error.message : String(error) }),
    );
  });
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= started.then((server) => server.close()).then(() => process.exit(0), () => process.exit(1));
  };
  channel.on('shutdown', stop);
  const { config, acme, workers, breakers } = await channel.request<WorkerStart>('start', null);
  const logger = createLogger({ format: config.log.format, write: (line) => process.stderr.write(line) });
  logProcessWarnings(logger);
  try {
    serving(await startServer(config, { logger, worker: workerState(channel, { acme: config.acme ? { current: acme } : null, workers, breakers }) }));
  } catch (error) {
    logger.error(`not started: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  const server = await started;
  // A terminal's Ctrl-C reaches every process of the group: the primary decides. A SIGTERM sent to
  // this worker alone (or to the whole group) stops it gracefully.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.once('SIGTERM', stop);
  process.once('disconnect', stop);
  channel.tell('ready', { urls: server.urls });
}
