import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { BufferPool, FileBody, openFile } from '../src/store/blobs/file-body.js';
import { curlOnce } from './load.js';
import { payload, type Payload } from './payload.js';
import { rotatedMedians } from './stats.js';

// npm run bench:file-path — issue 12, item 2: ways of sending a 1 GiB file from Node, each a bare
// server in this process, the same file from the page cache, one curl at a time. Figures are the
// rotated medians of BENCH_RUNS runs: MB/s, and the CPU this process spent per GiB sent (kernel
// and user: the copies and syscalls the way costs). Wharf's own way is the FileBody ring of 1 MiB
// buffers; the others are what it was chosen against.

const runs = Number(process.env.BENCH_RUNS ?? 3);

type Send = (file: Payload, response: ServerResponse | Http2ServerResponse) => Promise<void>;

function ring(bufferBytes: number): Send {
  const pool = new BufferPool({ maxIdle: 8, maxLent: 8, bufferBytes });
  return async (file, response) => {
    const { fd } = await openFile(file.path);
    new FileBody({ fd, start: 0, end: file.size, pool, blobPath: null }).sendTo(response);
  };
}

function piped(highWaterMark: number): Send {
  return async (file, response) => void createReadStream(file.path, { highWaterMark }).pipe(response);
}

/** Node's own fd-to-stream path: the HTTP/2 session reads the file and frames it in C++. */
const respondWithFD: Send = async (file, response) => {
  const handle = await open(file.path, 'r');
  const stream = (response as Http2ServerResponse).stream;
  stream.once('close', () => void handle.close());
  stream.respondWithFD(handle.fd, { ':status': 200, 'content-length': file.size }, { offset: 0, length: file.size });
};

const ways: Record<string, { send: Send; h2: boolean }> = {
  'fs read stream piped, 64 KiB reads': { send: piped(64 << 10), h2: false },
  'fs read stream piped, 1 MiB reads': { send: piped(1 << 20), h2: false },
  'FileBody ring, 256 KiB buffers': { send: ring(256 << 10), h2: false },
  'FileBody ring, 1 MiB buffers (Wharf)': { send: ring(1 << 20), h2: false },
  'FileBody ring, 4 MiB buffers': { send: ring(4 << 20), h2: false },
  'HTTP/2: FileBody ring, 1 MiB buffers (Wharf)': { send: ring(1 << 20), h2: true },
  'HTTP/2: respondWithFD': { send: respondWithFD, h2: true },
};

async function main(): Promise<void> {
  const file = await payload('blob-1g', 1 << 30);
  let way = '';
  const handler = (_: unknown, response: ServerResponse | Http2ServerResponse) => {
    if (way !== 'HTTP/2: respondWithFD') response.writeHead(200, { 'content-length': file.size });
    void ways[way]!.send(file, response);
  };
  const h1 = createServer(handler);
  const h2 = createH2Server(handler);
  await Promise.all([h1, h2].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const port = (server: typeof h1 | typeof h2) => (server.address() as AddressInfo).port;
  try {
    way = 'FileBody ring, 1 MiB buffers (Wharf)';
    await curlOnce(`http://127.0.0.1:${port(h1)}/`); // warms the page cache
    const medians = await rotatedMedians(runs, Object.keys(ways), async (name) => {
      way = name;
      const { h2: isH2 } = ways[name]!;
      const cpu = process.cpuUsage();
      const started = performance.now();
      const download = await curlOnce(`http://127.0.0.1:${port(isH2 ? h2 : h1)}/`, isH2 ? ['--http2-prior-knowledge'] : []);
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      if (download.bytes !== file.size) throw new Error(`${name}: ${download.bytes} bytes, not ${file.size}`);
      return { mbps: download.bytes / seconds / 1e6, cpuPerGiB: (used.user + used.system) / 1e6 / (download.bytes / 2 ** 30) };
    });
    console.log('| way of sending a 1 GiB file | MB/s | CPU s per GiB |\n|---|---|---|');
    for (const name of Object.keys(ways)) console.log(`| ${name} | ${Math.round(medians.mbps[name]!).toLocaleString('en-US')} | ${medians.cpuPerGiB[name]!.toFixed(2)} |`);
  } finally {
    h1.close();
    h2.close();
  }
}

await main();
