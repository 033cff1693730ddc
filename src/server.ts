import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Config } from './config/types.js';
import { accessLog } from './http/accesslog.js';
import { createApp } from './http/app.js';
import { RepositorySet } from './repos/set.js';
import { openStore } from './store/index.js';

export interface RunningServer {
  /** One base URL per listener, with the port actually bound (port 0 picks a free one). */
  urls: string[];
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Where access-log lines go; defaults to stdout when the config enables the access log. */
  writeLog?: (text: string) => void;
}

function listen(server: Server, port: number, address: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlOf(info: AddressInfo): string {
  const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  return `http://${host}:${info.port}`;
}

/** Opens the store, builds the repositories and the app, and starts every listener. */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const store = await openStore(config.dataDir);
  const repositories = RepositorySet.fromConfig(config, store, (message) => console.error(`wharf: ${message}`));
  const writeLog = options.writeLog ?? ((text: string) => process.stdout.write(text));
  const app = createApp({ repositories, accessLog: config.log.access ? accessLog(writeLog) : null });
  const servers: Server[] = [];
  const urls: string[] = [];
  try {
    for (const listener of config.listeners) {
      const server = createAdaptorServer({ fetch: app.fetch }) as Server;
      // Large layers take minutes: no whole-request deadline, but headers must arrive promptly.
      server.requestTimeout = 0;
      server.headersTimeout = 60_000;
      servers.push(server);
      urls.push(urlOf(await listen(server, listener.port, listener.address)));
    }
  } catch (error) {
    servers.forEach((server) => server.close());
    await repositories.close();
    store.close();
    throw error;
  }
  return {
    urls,
    async close() {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      })));
      await repositories.close();
      store.close();
    },
  };
}
