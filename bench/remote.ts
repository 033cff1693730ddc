import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { startCounter, type Counter } from './counter.js';
import { curlOnce, getRate } from './load.js';
import type { Payload } from './payload.js';
import { startDistribution, startWharf, type BenchServer } from './servers.js';
import { median } from './stats.js';
import type { Row } from './table.js';

// Remote repositories: Wharf's docker-remote and Distribution configured as a pull-through proxy,
// both in front of the same origin registry, each through its own counting pass-through. Every
// cold measurement starts a fresh proxy with an empty cache.

type Kind = 'Wharf' | 'Distribution';
// The cold pull's anchor is the upstream itself: the same blob pulled from it directly.

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
  const server = kind === 'Wharf' ? await startWharf(dir, { upstream: counter.url }) : await startDistribution(dir, counter.url);
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

/** A cold pull through a fresh proxy: throughput, first byte, upstream bytes, then the warm pull and manifest rate. */
async function coldPull(proxy: Proxy, large: Payload): Promise<{ mbps: number; firstByteMs: number; upstream: number; warm: number }> {
  // A pull starts with its manifest: the cold blob is then fetched by a proxy that is up
  // and running, as in production, rather than being the first request its process sees.
  await (await fetch(proxy.manifestUrl, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer();
  const started = performance.now();
  const download = await curlOnce(proxy.blobUrl);
  const mbps = download.bytes / ((performance.now() - started) / 1000) / 1e6;
  const upstream = (await settled(proxy.counter)).blobBytes / large.size;
  const warmStart = performance.now();
  const again = await curlOnce(proxy.blobUrl);
  return { mbps, firstByteMs: download.firstByte * 1000, upstream, warm: again.bytes / ((performance.now() - warmStart) / 1000) / 1e6 };
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

export async function remoteBench(options: { work: string; origin: string; image: string; large: Payload; runs: number; seconds: number }): Promise<Row[]> {
  const { work, origin, image, large, runs } = options;
  const gib = large.size / 2 ** 30;
  const results: Record<string, Record<string, number>> = {};
  const record = (label: string, kind: string, value: number) => { (results[label] ??= {})[kind] = value; };
  const samples: Record<string, Record<string, number[]>> = {};
  const sample = (label: string, kind: string, value: number) => { ((samples[label] ??= {})[kind] ??= []).push(value); };
  // Wharf, Distribution and a direct pull from the upstream take turns, in a rotating order.
  const kinds = ['Wharf', 'Distribution', 'upstream direct'] as const;
  for (let i = 0; i < runs; i++) {
    for (const kind of [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)]) {
      console.log(`bench: remote cold/warm 1 GiB pull — ${kind} (run ${i + 1})`);
      if (kind === 'upstream direct') {
        const direct = await directPull(work, origin, image, large);
        sample('remote: cold 1 GiB pull (MB/s)', kind, direct.mbps);
        sample('remote: cold 1 GiB, first byte (ms)', kind, direct.firstByteMs);
        continue;
      }
      const proxy = await startProxy(kind, work, origin, image, large.digest);
      try {
        const pulled = await coldPull(proxy, large);
        sample('remote: cold 1 GiB pull (MB/s)', kind, pulled.mbps);
        sample('remote: cold 1 GiB, first byte (ms)', kind, pulled.firstByteMs);
        sample('remote: cold 1 GiB, bytes from upstream (x blob)', kind, pulled.upstream);
        sample('remote: warm 1 GiB pull (MB/s)', kind, pulled.warm);
        if (i === 0) {
          const headers = { Accept: OCI_MANIFEST };
          await getRate(proxy.manifestUrl, { connections: 10, seconds: 1, headers }); // warm-up
          record('remote: warm manifest GET by tag (req/s)', kind, (await getRate(proxy.manifestUrl, { connections: 10, seconds: options.seconds, headers })).rps);
        }
      } finally {
        await proxy.stop();
      }
    }
  }
  for (const [label, byKind] of Object.entries(samples)) for (const [kind, values] of Object.entries(byKind)) record(label, kind, median(values));
  for (const kind of ['Wharf', 'Distribution'] as const) {
    console.log(`bench: remote 20 concurrent cold pulls — ${kind}`);
    const proxy = await startProxy(kind, work, origin, image, large.digest);
    try {
      const started = performance.now();
      await Promise.all(Array.from({ length: 20 }, () => curlOnce(proxy.blobUrl)));
      record('remote: 20 concurrent cold 1 GiB pulls (s)', kind, (performance.now() - started) / 1000);
      const traffic = await settled(proxy.counter);
      record('remote: 20 concurrent cold, upstream GETs', kind, traffic.blobGets);
      record('remote: 20 concurrent cold, upstream GiB', kind, traffic.blobBytes / 2 ** 30);
    } finally {
      await proxy.stop();
    }
  }
  const targets: Record<string, string> = {
    'remote: cold 1 GiB pull (MB/s)': '>= 0.9x upstream direct',
    'remote: cold 1 GiB, first byte (ms)': '<= 1.0x Distribution',
    'remote: cold 1 GiB, bytes from upstream (x blob)': `exactly 1 (${gib.toFixed(0)} GiB)`,
    'remote: 20 concurrent cold 1 GiB pulls (s)': '<= 0.7x Distribution',
    'remote: 20 concurrent cold, upstream GETs': 'exactly 1',
    'remote: warm manifest GET by tag (req/s)': '>= 10x Distribution',
  };
  return Object.entries(results).map(([label, values]) => ({ label, unit: '', target: targets[label] ?? '-', values: values as Record<string, number> }));
}
