import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, nginxConf, startProcess, type BenchServer } from './servers.js';

// The bench's witness of how often a proxy goes to the upstream: nginx passing requests through
// unbuffered (fast enough not to be the bottleneck, unlike a Node pass-through) and logging each
// request's method, path and body bytes, which are counted afterwards.

export interface Counter {
  url: string;
  /** Blob GETs that reached the upstream so far, and their body bytes. */
  read(): Promise<{ blobGets: number; blobBytes: number }>;
  stop(): Promise<void>;
}

export async function startCounter(work: string, target: string): Promise<Counter> {
  const dir = await mkdtemp(join(work, 'counter-'));
  const port = await freePort();
  const log = join(dir, 'access.log');
  await writeFile(log, '');
  await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, `
  log_format counted '$request_method $uri $status $body_bytes_sent';
  access_log ${log} counted;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${target};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      client_max_body_size 0;
    }
  }`));
  const server: BenchServer = await startProcess('counter', '/usr/sbin/nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], `http://127.0.0.1:${port}/v2/`);
  return {
    url: `http://127.0.0.1:${port}`,
    async read() {
      let blobGets = 0;
      let blobBytes = 0;
      for (const line of (await readFile(log, 'utf8')).split('\n')) {
        const [method, uri, , bytes] = line.split(' ');
        if (method === 'GET' && /\/blobs\/sha256:/.test(uri ?? '')) {
          blobGets++;
          blobBytes += Number(bytes);
        }
      }
      return { blobGets, blobBytes };
    },
    stop: () => server.stop(),
  };
}
