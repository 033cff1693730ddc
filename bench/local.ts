import { blobFigures, cpuRow, type BlobSource } from './blob-runs.js';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { curlOnce, curlStreams, getRate, h2load, loopRate, push, type Rate } from './load.js';
import { freshBlob, type Payload } from './payload.js';
import { withPeakRss } from './proc.js';
import { blobPath, type BenchServer } from './servers.js';
import { rotatedMedian, rotatedMedians, type Figures } from './stats.js';
import type { Row } from './table.js';

// Local repositories: Wharf's docker-local against Distribution (the same image seeded), nginx
// (Wharf's own blob files, sendfile) and, for manifests, a bare node:http server and the Hono floor (hono-floor.ts), both answering
// the manifest from memory.

export interface LocalBenchOptions {
  wharf: BenchServer;
  /** The same Wharf build with `workers: auto`, seeded alike. */
  wharfAuto: BenchServer;
  distribution: BenchServer;
  nginx: BenchServer;
  bare: BenchServer;
  honoFloor: BenchServer;
  /** Image names in Wharf and in Distribution. */
  names: { wharf: string; distribution: string };
  payloads: { small: Payload; medium: Payload; large: Payload; push: Payload };
  runs: number;
  seconds: number;
}

function rateRow(label: string, target: string, figures: Figures<'rps' | 'p99' | 'mbps'>): Row {
  return { label, unit: 'req/s', target, values: figures.rps, p99: figures.p99, mbps: figures.mbps };
}

export async function localBench(options: LocalBenchOptions): Promise<{ rows: Row[]; peakRssMiB: number }> {
  const { wharf, wharfAuto, distribution, nginx, bare, honoFloor, names, payloads, runs, seconds } = options;
  const wharfBase = wharf.url.replace('/v2/', '');
  const distBase = distribution.url.replace('/v2/', '');
  // A Wharf column of a blob row (another Wharf, seeded alike, can stand beside it: workers 1 vs auto).
  const wharfSource = (server: BenchServer, digest: string): BlobSource => ({
    url: `${server.url}${names.wharf}/blobs/${digest}`, file: server.blobFile!(digest), pids: [server.pid],
  });
  const blobSources = ({ digest }: Payload): Record<string, BlobSource> => ({
    Wharf: wharfSource(wharf, digest),
    Distribution: { url: `${distribution.url}${names.distribution}/blobs/${digest}`, file: distribution.blobFile!(digest), pids: [distribution.pid] },
    nginx: { url: `${nginx.url}${blobPath(digest)}`, file: wharf.blobFile!(digest), pids: [nginx.pid] },
  });
  const rows: Row[] = [];

  const accept = { Accept: OCI_MANIFEST };
  const byTag: Record<string, string> = {
    Wharf: `${wharfBase}/v2/${names.wharf}/manifests/bench`,
    Distribution: `${distBase}/v2/${names.distribution}/manifests/bench`,
    'node:http': bare.url,
    'Hono floor': `${honoFloor.url}${names.wharf}/manifests/bench`,
  };
  const manifestRate = async (label: string, target: string, rate: (url: string) => Promise<Rate>) => {
    for (const url of Object.values(byTag)) await rate(url); // warm-up (JIT, connection pools), not counted
    rows.push(rateRow(label, target, await rotatedMedians(runs, Object.keys(byTag), (server) => {
      console.log(`bench: ${label} — ${server}`);
      return rate(byTag[server]!);
    })));
  };
  await manifestRate('manifest GET by tag', '>= 0.6x node:http', (url) => getRate(url, { connections: 10, seconds, headers: accept }));
  await manifestRate('manifest HEAD by tag', '-', (url) => loopRate(url, { method: 'HEAD', connections: 10, seconds, headers: accept }));

  const small = await blobFigures('1 KiB blob GET', { runs, sources: blobSources(payloads.small), load: (url) => getRate(url, { connections: 10, seconds }) });
  rows.push(rateRow('1 KiB blob GET', '>= 10x Distribution', small));
  const mediumRow = async (connections: number) => {
    const label = `4 MiB blob GET, ${connections} connections`;
    const medium = await blobFigures(label, { runs, sources: blobSources(payloads.medium), load: (url) => h2load(url, { protocol: 'h1', connections, seconds }) });
    rows.push(rateRow(label, connections === 64 ? '>= 1.0x Distribution' : '-', medium));
    if (connections === 64) rows.push(cpuRow(`CPU seconds per GB sent, ${label}`, medium));
  };
  await mediumRow(4);

  // Wharf's peak RSS over the four-stream row (its idle turns cannot raise it).
  let peakRssMiB = 0;
  const streamTargets: Record<number, string> = { 1: '>= 0.9x nginx', 4: '>= 1.0x Distribution; >= 1.0x nginx (workers auto)', 16: '-' };
  for (const streams of [1, 4, 16]) {
    const label = `1 GiB blob GET, ${streams} stream${streams > 1 ? 's' : ''}`;
    const { result: large, peakMiB } = await withPeakRss(wharf.pid, () => blobFigures(label, {
      runs, sources: blobSources(payloads.large), load: (url) => curlStreams(url, streams), warmUp: (url) => curlOnce(url),
    }));
    if (streams === 4) peakRssMiB = peakMiB;
    rows.push({ label, unit: 'MB/s', target: streamTargets[streams]!, values: large.mbps });
    if (streams === 4) rows.push(cpuRow(`CPU seconds per GB sent, ${label}`, large));
  }
  // Workers: the same four streams from a Wharf with one worker per core, beside the single process.
  const label = '1 GiB blob GET, 4 streams, workers auto';
  const { nginx: sameFile } = blobSources(payloads.large);
  const workers = await blobFigures(label, {
    runs,
    sources: { Wharf: wharfSource(wharfAuto, payloads.large.digest), 'Wharf 1 worker': wharfSource(wharf, payloads.large.digest), nginx: sameFile! },
    load: (url) => curlStreams(url, 4),
    warmUp: (url) => curlOnce(url),
  });
  rows.push({ label, unit: 'MB/s', target: '>= 1.0x nginx', values: workers.mbps });
  rows.push(cpuRow(`CPU seconds per GB sent, ${label}`, workers));
  await mediumRow(64); // after the four streams: its buffers would otherwise start their RSS high

  for (const mode of ['monolithic', 'chunked'] as const) {
    const targets: Record<string, [string, string]> = { Wharf: [wharfBase, names.wharf], Distribution: [distBase, names.distribution] };
    // One untimed push each first, as every row warms its servers: a server's first push of a mode
    // runs at 60-70% of the later ones (JIT, first collections).
    for (const target of Object.values(targets)) await push(...target, await freshBlob(payloads.push), mode);
    const values = await rotatedMedian(runs, Object.keys(targets), async (server) => {
      console.log(`bench: 256 MiB push ${mode} — ${server}`);
      return push(...targets[server]!, await freshBlob(payloads.push), mode);
    });
    rows.push({ label: `256 MiB push, ${mode}`, unit: 'MB/s', target: mode === 'monolithic' ? '>= 1.0x Distribution' : '>= 1.5x Distribution', values });
  }
  return { rows, peakRssMiB };
}
