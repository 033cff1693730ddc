import { spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, type ClientRequest } from 'node:http';
import autocannon from 'autocannon';
import type { Payload } from './payload.js';

// Load generators. autocannon for request rates (it cannot time HEAD, so HEAD has its own
// keep-alive loop); h2load for large bodies and h2; curl processes for large streams; node:http
// for uploads (the payload read through reused buffers). Every loop is bounded in time or count
// and targets loopback only.

/** Bytes received and their rate. */
export interface Transfer {
  bytes: number;
  mbps: number;
}

export interface Rate extends Transfer {
  rps: number;
  p99: number;
}

export async function getRate(url: string, options: { connections: number; seconds: number; headers?: Record<string, string>; method?: 'GET' | 'POST'; body?: string }): Promise<Rate> {
  const result = await autocannon({
    url, connections: options.connections, duration: options.seconds, headers: options.headers ?? {},
    ...(options.method ? { method: options.method } : {}), ...(options.body !== undefined ? { body: options.body } : {}),
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99, mbps: result.throughput.average / 1e6, bytes: result.throughput.total };
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
      const received = await one(); // not `bytes += await one()`: that would add to a stale total
      bytes += received;
      latencies.push(performance.now() - begun);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, mbps: bytes / elapsed / 1e6, bytes };
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
export async function curlStreams(url: string, streams: number, args: string[] = []): Promise<Transfer> {
  const started = performance.now();
  const downloads = await Promise.all(Array.from({ length: streams }, () => curlOnce(url, args)));
  const bytes = downloads.reduce((sum, d) => sum + d.bytes, 0);
  return { bytes, mbps: bytes / ((performance.now() - started) / 1000) / 1e6 };
}

interface Sent {
  status: number;
  location: string;
}

/** A byte range of an open payload file, sent as a request body. */
interface FileRange {
  file: FileHandle;
  start: number;
  end: number;
  /** Sent instead of the file's first bytes (Payload.head). */
  head?: Buffer | undefined;
}

/**
 * The push client reads the payload through two 1 MiB buffers it reuses: one is read while the
 * other is being written. createReadStream's fresh buffer per read made the client cost more CPU
 * than the server it measures (page faults: 570 against 110 ms of system time per 256 MiB).
 */
const pieceBytes = 1 << 20;

async function writeRange(req: ClientRequest, { file, start, end, head }: FileRange, buffers: [Buffer, Buffer]): Promise<void> {
  let writing: Promise<void> = Promise.resolve();
  for (let position = start, i = 0; position < end; i++) {
    // This buffer's previous write (two pieces ago) was awaited before the last piece was written.
    const buffer = buffers[i % 2]!;
    const { bytesRead } = await file.read(buffer, 0, Math.min(pieceBytes, end - position), position);
    if (bytesRead === 0) throw new Error(`payload shorter than ${end} bytes`);
    if (head && position === 0) head.copy(buffer, 0, 0, Math.min(head.length, bytesRead));
    position += bytesRead;
    await writing;
    writing = new Promise((resolve, reject) => req.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve())));
    writing.catch(() => undefined); // seen by the next await; not unhandled while a read is in flight
  }
  await writing;
  req.end();
}

function send(url: URL, method: string, headers: Record<string, string>, body?: FileRange, buffers?: [Buffer, Buffer]): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? '' }));
    });
    req.on('error', reject);
    if (body) writeRange(req, body, buffers!).catch((error: Error) => req.destroy(error));
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
  const file = await open(blob.path, 'r');
  const buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(pieceBytes), Buffer.allocUnsafe(pieceBytes)];
  try {
    const started = performance.now();
    let location = new URL(expect(await send(new URL(`${base}/v2/${name}/blobs/uploads/`, base), 'POST', {}), 202, 'POST').location, base);
    if (mode === 'chunked') {
      for (let start = 0; start < blob.size; start += chunkBytes) {
        const end = Math.min(start + chunkBytes, blob.size);
        const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start), 'Content-Range': `${start}-${end - 1}` };
        location = new URL(expect(await send(location, 'PATCH', headers, { file, start, end, head: blob.head }, buffers), 202, 'PATCH').location, base);
      }
    }
    location.searchParams.set('digest', blob.digest);
    const body = mode === 'monolithic' ? { file, start: 0, end: blob.size, head: blob.head } : undefined;
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(mode === 'monolithic' ? blob.size : 0) };
    expect(await send(location, 'PUT', headers, body, buffers), 201, 'PUT');
    return blob.size / ((performance.now() - started) / 1000) / 1e6;
  } finally {
    await file.close();
  }
}

/** Puts a manifest; the bench's seeding step. */
export async function putManifest(base: string, name: string, tag: string, bytes: Buffer, mediaType: string): Promise<void> {
  const response = await fetch(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
  if (response.status !== 201) throw new Error(`manifest PUT: ${response.status} ${await response.text()}`);
}

/**
 * GETs with h2load, nghttp2's C client: HTTP/1.1 keep-alive (`h1`: a client that costs the shared
 * cores little, for large bodies) or h2 (autocannon has none). `connections` connections, with
 * `streams` concurrent streams each on h2, for `seconds`; any failure or non-2xx answer throws.
 */
export async function h2load(url: string, options: { protocol: 'h1' | 'h2'; connections: number; streams?: number; seconds: number; headers?: Record<string, string> }): Promise<Rate> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-h2load-'));
  const log = join(dir, 'requests.tsv');
  const headerArgs = Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const args = [
    ...(options.protocol === 'h1' ? ['--h1'] : ['-m', String(options.streams ?? 1)]),
    '-D', String(options.seconds), '-c', String(options.connections), `--log-file=${log}`, ...headerArgs, url,
  ];
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load ${url}: exit ${code}\n${text.slice(-500)}`))));
    });
    const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
    const failed = /requests: .*?(\d+) failed, (\d+) errored/.exec(out);
    const statuses = /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
    const data = /\((\d+)\) data/.exec(out);
    if (!finished || !failed || !statuses || !data || [...failed.slice(1), ...statuses.slice(1)].some((n) => n !== '0')) {
      throw new Error(`h2load ${url}: failed or non-2xx requests\n${out.slice(-500)}`);
    }
    const latencies = (await readFile(log, 'utf8')).trim().split('\n').map((line) => Number(line.split('\t')[2]) / 1000).sort((a, b) => a - b);
    const bytes = Number(data[1]);
    return { rps: Number(finished[2]), p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, mbps: bytes / Number(finished[1]) / 1e6, bytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
