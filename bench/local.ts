import { basename } from 'node:path';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { curlStreams, getRate, loopRate, push, withPeakRss, type Rate } from './load.js';
import type { Payload } from './payload.js';
import type { BenchServer } from './servers.js';
import { rotatedMedian, rotatedMedians } from './stats.js';
import type { Row } from './table.js';

// Local repositories: Wharf's docker-local against Distribution (the same image seeded), nginx
// (the same files, sendfile) and a bare node:http server (the manifest from memory).

export interface LocalBenchOptions {
  wharf: BenchServer;
  distribution: BenchServer;
  nginx: BenchServer;
  bare: BenchServer;
  /** Image names in Wharf and in Distribution. */
  names: { wharf: string; distribution: string };
  payloads: { small: Payload; medium: Payload; large: Payload; push: Payload };
  runs: number;
  seconds: number;
}

export async function localBench(options: LocalBenchOptions): Promise<{ rows: Row[]; peakRssMiB: number }> {
  const { wharf, distribution, nginx, bare, names, payloads, runs, seconds } = options;
  const wharfBase = wharf.url.replace('/v2/', '');
  const distBase = distribution.url.replace('/v2/', '');
  const nginxBase = nginx.url.replace(/\/$/, '');
  const blobUrls = (payload: Payload) => ({
    Wharf: `${wharfBase}/v2/${names.wharf}/blobs/${payload.digest}`,
    Distribution: `${distBase}/v2/${names.distribution}/blobs/${payload.digest}`,
    nginx: `${nginxBase}/${basename(payload.path)}`,
  });
  const rows: Row[] = [];

  const measureRate = async (label: string, target: string, fn: (url: string) => Promise<Rate>, urls: Record<string, string>) => {
    for (const url of Object.values(urls)) await fn(url); // warm-up (JIT, page cache, connection pools), not counted
    const results = await rotatedMedians(runs, Object.keys(urls), (server) => {
      console.log(`bench: ${label} — ${server}`);
      return fn(urls[server]!);
    }, (rate) => [rate.rps, rate.p99, rate.mbps]);
    const column = (i: number) => Object.fromEntries(Object.entries(results).map(([server, values]) => [server, values[i]!]));
    rows.push({ label, unit: 'req/s', target, values: column(0), p99: column(1), mbps: column(2) });
  };

  const accept = { Accept: OCI_MANIFEST };
  const byTag = {
    Wharf: `${wharfBase}/v2/${names.wharf}/manifests/bench`,
    Distribution: `${distBase}/v2/${names.distribution}/manifests/bench`,
    'node:http': bare.url,
  };
  await measureRate('manifest GET by tag', '>= 0.6x node:http', (url) => getRate(url, { connections: 10, seconds, headers: accept }), byTag);
  await measureRate('manifest HEAD by tag', '-', (url) => loopRate(url, { method: 'HEAD', connections: 10, seconds, headers: accept }), byTag);
  await measureRate('1 KiB blob GET', '>= 10x Distribution', (url) => getRate(url, { connections: 10, seconds }), blobUrls(payloads.small));
  await measureRate('4 MiB blob GET', '-', (url) => loopRate(url, { method: 'GET', connections: 4, seconds }), blobUrls(payloads.medium));

  // Streams: one untimed download each first (page cache, writeback of the seeded copy), then
  // the servers in a rotating order, so that no server always runs first.
  const largeUrls: Record<string, string> = blobUrls(payloads.large);
  for (const url of Object.values(largeUrls)) await curlStreams(url, 1);
  let peakRssMiB = 0;
  for (const streams of [1, 4]) {
    const values = await rotatedMedian(runs, Object.keys(largeUrls), async (server) => {
      console.log(`bench: 1 GiB GET x${streams} — ${server}`);
      const { result, peakMiB } = await withPeakRss(wharf.pid, () => curlStreams(largeUrls[server]!, streams));
      if (server === 'Wharf' && streams === 4) peakRssMiB = Math.max(peakRssMiB, peakMiB);
      return result;
    });
    rows.push({ label: `1 GiB blob GET, ${streams} stream${streams > 1 ? 's' : ''}`, unit: 'MB/s', target: streams === 1 ? '>= 0.9x nginx' : '>= 1.0x nginx', values });
  }

  for (const mode of ['monolithic', 'chunked'] as const) {
    const targets: Record<string, [string, string]> = { Wharf: [wharfBase, names.wharf], Distribution: [distBase, names.distribution] };
    const values = await rotatedMedian(runs, Object.keys(targets), (server) => {
      console.log(`bench: 256 MiB push ${mode} — ${server}`);
      return push(...targets[server]!, payloads.push, mode);
    });
    rows.push({ label: `256 MiB push, ${mode}`, unit: 'MB/s', target: mode === 'monolithic' ? '>= 1.0x Distribution' : '>= 1.5x Distribution', values });
  }
  return { rows, peakRssMiB };
}
