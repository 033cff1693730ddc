import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { startCounter, type Counter } from './counter.js';
import { warmFile } from './blob-runs.js';
import { curlOnce, getRate } from './load.js';
import type { Payload } from './payload.js';
import { startDistribution, startFloorProxy, startWharf, type BenchServer } from './servers.js';
import { rotatedMedians } from './stats.js';
import type { Row } from './table.js';

// Remote repositories: Wharf's docker-remote and Distribution configured as a pull-through proxy,
// both in front of the same origin registry, each through its own counting pass-through. Every
// cold measurement starts a fresh proxy with an empty cache. The cold pull's anchor is the
// upstream itself: the same blob pulled from it directly. Beside them, the Node floor
// (floor-proxy.ts): what any Node proxy must do per byte, so a miss can be told from a bound.

type Kind = 'Wharf' | 'Distribution' | 'Node floor';

interface Proxy {
  server: BenchServer;
  counter: Counter;
  blobUrl: string;
  manifestUrl: string;
  stop(): Promise<void>;
}

async function startProxy(kind: Kind, work: string, origin: string, image: string, digest: string): Promise<Proxy> {
  const dir = await mkdtemp(join(work, `${kind}-proxy-`));
  const counter = await startCounter(work, origin);
  const start = { Wharf: () => startWharf(dir, { upstream: counter.url }), Distribution: () => startDistribution(dir, counter.url), 'Node floor': () => startFloorProxy(dir, counter.url) };
  const server = await start[kind]();
  const base = server.url.replace(/\/v2\/$/, '');
  const path = kind === 'Wharf' ? `docker-remote/${image}` : image;
  return {
    server,
    counter,
    blobUrl: `${base}/v2/${path}/blobs/${digest}`,
    manifestUrl: `${base}/v2/${path}/manifests/bench`,
    async stop() {
      await server.stop();
      await counter.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The upstream blob traffic once it has stopped moving (Distribution fills its cache with a second
 * fetch after answering; nginx logs a request when it ends).
 */
async function settled(counter: Counter): Promise<{ blobGets: number; blobBytes: number }> {
  let last = await counter.read();
  for (let i = 0; i < 60; i++) {
    await sleep(1000);
    const now = await counter.read();
    if (now.blobBytes === last.blobBytes && now.blobGets === last.blobGets) return now;
    last = now;
  }
  return last;
}

/** A cold pull through a fresh proxy: throughput, first byte, upstream bytes, then (a cache) the warm pull. */
async function coldPull(proxy: Proxy, large: Payload, caches: boolean): Promise<{ mbps: number; firstByteMs: number; upstream: number; warm?: number }> {
  // A pull starts with its manifest: the cold blob is then fetched by a proxy that is up
  // and running, as in production, rather than being the first request its process sees.
  await (await fetch(proxy.manifestUrl, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer();
  const started = performance.now();
  const download = await curlOnce(proxy.blobUrl);
  const mbps = download.bytes / ((performance.now() - started) / 1000) / 1e6;
  const upstream = (await settled(proxy.counter)).blobBytes / large.size;
  const cold = { mbps, firstByteMs: download.firstByte * 1000, upstream };
  if (!caches) return cold;
  const warmStart = performance.now();
  const again = await curlOnce(proxy.blobUrl);
  return { ...cold, warm: again.bytes / ((performance.now() - warmStart) / 1000) / 1e6 };
}

/** The same blob pulled straight from the upstream, through the same kind of counting pass-through. */
async function directPull(work: string, origin: string, image: string, large: Payload): Promise<{ mbps: number; firstByteMs: number }> {
  const counter = await startCounter(work, origin);
  try {
    const started = performance.now();
    const download = await curlOnce(`${counter.url}/v2/${image}/blobs/${large.digest}`);
    return { mbps: download.bytes / ((performance.now() - started) / 1000) / 1e6, firstByteMs: download.firstByte * 1000 };
  } finally {
    await counter.stop();
  }
}

export interface RemoteBenchOptions {
  work: string;
  /** The origin registry, and the file it sends the large blob from. */
  origin: string;
  originFile: string;
  image: string;
  large: Payload;
  runs: number;
  seconds: number;
}

export async function remoteBench(options: RemoteBenchOptions): Promise<Row[]> {
  const { work, origin, originFile, image, large, runs } = options;
  const manifestRates: Record<string, number> = {};
  // Wharf, Distribution and a direct pull from the upstream take turns, in a rotating order,
  // each starting with the origin's blob file in the page cache.
  const pulls = await rotatedMedians<'mbps' | 'firstByteMs' | 'upstream' | 'warm'>(runs, ['Wharf', 'Distribution', 'Node floor', 'upstream direct'], async (kind) => {
    console.log(`bench: remote cold/warm 1 GiB pull — ${kind}`);
    await warmFile(originFile);
    if (kind === 'upstream direct') return directPull(work, origin, image, large);
    const proxy = await startProxy(kind as Kind, work, origin, image, large.digest);
    try {
      const caches = kind !== 'Node floor';
      const pulled = await coldPull(proxy, large, caches);
      if (caches && manifestRates[kind] === undefined) {
        const headers = { Accept: OCI_MANIFEST };
        await getRate(proxy.manifestUrl, { connections: 10, seconds: 1, headers }); // warm-up
        manifestRates[kind] = (await getRate(proxy.manifestUrl, { connections: 10, seconds: options.seconds, headers })).rps;
      }
      return pulled;
    } finally {
      await proxy.stop();
    }
  });
  const gib = large.size / 2 ** 30;
  const row = (label: string, target: string, values: Record<string, number>): Row => ({ label, unit: '', target, values });
  const rows = [
    row('remote: warm manifest GET by tag (req/s)', '>= 10x Distribution', manifestRates),
    row('remote: cold 1 GiB pull (MB/s)', '>= 0.9x upstream direct', pulls.mbps),
    row('remote: cold 1 GiB, first byte (ms)', '<= 1.0x Distribution', pulls.firstByteMs),
    row('remote: cold 1 GiB, bytes from upstream (x blob)', `exactly 1 (${gib.toFixed(0)} GiB)`, pulls.upstream),
    row('remote: warm 1 GiB pull (MB/s)', '-', pulls.warm),
  ];
  const concurrent: Record<'seconds' | 'gets' | 'gib', Record<string, number>> = { seconds: {}, gets: {}, gib: {} };
  for (const kind of ['Wharf', 'Distribution'] as const) {
    console.log(`bench: remote 20 concurrent cold pulls — ${kind}`);
    const proxy = await startProxy(kind, work, origin, image, large.digest);
    try {
      const started = performance.now();
      await Promise.all(Array.from({ length: 20 }, () => curlOnce(proxy.blobUrl)));
      concurrent.seconds[kind] = (performance.now() - started) / 1000;
      const traffic = await settled(proxy.counter);
      concurrent.gets[kind] = traffic.blobGets;
      concurrent.gib[kind] = traffic.blobBytes / 2 ** 30;
    } finally {
      await proxy.stop();
    }
  }
  rows.push(
    row('remote: 20 concurrent cold 1 GiB pulls (s)', '<= 0.7x Distribution', concurrent.seconds),
    row('remote: 20 concurrent cold, upstream GETs', 'exactly 1', concurrent.gets),
    row('remote: 20 concurrent cold, upstream GiB', '-', concurrent.gib),
  );
  return rows;
}
