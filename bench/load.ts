import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import autocannon from 'autocannon';
import type { Payload } from './payload.js';

// Load generators. autocannon for request rates (it cannot time HEAD, so HEAD has its own
// keep-alive loop); curl processes for large streams; node:http for uploads. Every loop is
// bounded in time or count and targets loopback only.

export interface Rate {
  rps: number;
  p99: number;
  mbps: number;
}

export async function getRate(url: string, options: { connections: number; seconds: number; headers?: Record<string, string>; method?: 'GET' | 'POST'; body?: string }): Promise<Rate> {
  const result = await autocannon({
    url, connections: options.connections, duration: options.seconds, headers: options.headers ?? {},
    ...(options.method ? { method: options.method } : {}), ...(options.body !== undefined ? { body: options.body } : {}),
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99, mbps: result.throughput.average / 1e6 };
}

/**
 * Runs `one` back to back on `concurrency` lanes for `seconds`; each call resolves with the bytes
 * it received. Returns requests per second, p99 latency and throughput.
 */
async function timedLoop(concurrency: number, seconds: number, one: () => Promise<number>): Promise<Rate> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let bytes = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      bytes += await one();
      latencies.push(performance.now() - begun);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, mbps: bytes / elapsed / 1e6 };
}

/** N keep-alive connections sending `method` back to back for `seconds`; bodies are read and dropped. */
export async function loopRate(url: string, options: { method: string; connections: number; seconds: number; headers?: Record<string, string> }): Promise<Rate> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  try {
    return await timedLoop(options.connections, options.seconds, () => new Promise<number>((resolve, reject) => {
      const req = request(url, { method: options.method, agent, headers: options.headers }, (res) => {
        if ((res.statusCode ?? 0) >= 300) reject(new Error(`${url}: ${res.statusCode}`));
        let bytes = 0;
        res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
        res.on('end', () => resolve(bytes));
      });
      req.on('error', reject);
      req.end();
    }));
  } finally {
    agent.destroy();
  }
}

export interface Download {
  bytes: number;
  /** Seconds to the first byte of the body. */
  firstByte: number;
}

/** One curl download of `url`, discarded; `args` adds curl options (--cacert, --http2, …). */
export function curlOnce(url: string, args: string[] = []): Promise<Download> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-s', '-f', '-o', '/dev/null', '-w', '%{size_download} %{time_starttransfer}', ...args, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('exit', (code) => {
      const [bytes, firstByte] = out.split(' ').map(Number);
      if (code === 0) resolve({ bytes: bytes!, firstByte: firstByte! });
      else reject(new Error(`curl ${url}: exit ${code}`));
    });
  });
}

/** `streams` parallel curl downloads of `url`; MB/s over the wall time of all of them. */
export async function curlStreams(url: string, streams: number, args: string[] = []): Promise<number> {
  const started = performance.now();
  const downloads = await Promise.all(Array.from({ length: streams }, () => curlOnce(url, args)));
  const seconds = (performance.now() - started) / 1000;
  return downloads.reduce((sum, d) => sum + d.bytes, 0) / seconds / 1e6;
}

interface Sent {
  status: number;
  location: string;
}

function send(url: URL, method: string, headers: Record<string, string>, body?: NodeJS.ReadableStream): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? '' }));
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

function expect(sent: Sent, status: number, what: string): Sent {
  if (sent.status !== status) throw new Error(`${what}: expected ${status}, got ${sent.status}`);
  return sent;
}

/**
 * Pushes a blob from disk: "monolithic" is POST then one PUT with the whole body (the form every
 * registry supports); "chunked" is POST, PATCHes of `chunkBytes` with Content-Range, then PUT.
 * Returns MB/s.
 */
export async function push(base: string, name: string, blob: Payload, mode: 'monolithic' | 'chunked', chunkBytes = 16 << 20): Promise<number> {
  const started = performance.now();
  let location = new URL(expect(await send(new URL(`${base}/v2/${name}/blobs/uploads/`, base), 'POST', {}), 202, 'POST').location, base);
  if (mode === 'chunked') {
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const end = Math.min(start + chunkBytes, blob.size) - 1;
      const body = createReadStream(blob.path, { start, end, highWaterMark: 1 << 20 });
      const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start + 1), 'Content-Range': `${start}-${end}` };
      location = new URL(expect(await send(location, 'PATCH', headers, body), 202, 'PATCH').location, base);
    }
  }
  location.searchParams.set('digest', blob.digest);
  const body = mode === 'monolithic' ? createReadStream(blob.path, { highWaterMark: 1 << 20 }) : undefined;
  const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(mode === 'monolithic' ? blob.size : 0) };
  expect(await send(location, 'PUT', headers, body), 201, 'PUT');
  return blob.size / ((performance.now() - started) / 1000) / 1e6;
}

/** Puts a manifest; the bench's seeding step. */
export async function putManifest(base: string, name: string, tag: string, bytes: Buffer, mediaType: string): Promise<void> {
  const response = await fetch(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
  if (response.status !== 201) throw new Error(`manifest PUT: ${response.status} ${await response.text()}`);
}

/** Resident set size of a process, in MiB (Linux /proc). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples `pid`'s RSS every 50 ms while `work` runs; returns the work's result and the peak. */
export async function withPeakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = await rssMiB(pid);
  const timer = setInterval(() => {
    rssMiB(pid).then((value) => { peak = Math.max(peak, value); }, () => undefined);
  }, 50);
  try {
    return { result: await work(), peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * HTTP/2 GETs with h2load (nghttp2's C client; autocannon has no h2): `connections` sessions with
 * `streams` concurrent streams each, for `seconds`. Only the request rate is measured.
 */
export function h2Rate(url: string, options: { connections: number; streams: number; seconds: number; headers?: Record<string, string> }): Promise<number> {
  const headerArgs = Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const args = ['-D', String(options.seconds), '-c', String(options.connections), '-m', String(options.streams), ...headerArgs, url];
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const rate = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1];
      const failed = /requests: .*?(\d+) failed, (\d+) errored/.exec(out);
      if (code !== 0 || !rate || !failed || failed[1] !== '0' || failed[2] !== '0') reject(new Error(`h2load ${url}: exit ${code}\n${out.slice(-500)}`));
      else resolve(Number(rate));
    });
  });
}
