import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { curlStreams, getRate, loopRate, push, putManifest, withPeakRss, type Rate } from './load.js';
import { fixedPayload, payload, payloadDir } from './payload.js';
import { startBareNode, startDistribution, startNginx, startWharf, type BenchServer } from './servers.js';
import { renderTable, type Row } from './table.js';

// npm run bench: Wharf against CNCF Distribution 2.8.2, nginx (sendfile) and a bare node:http
// server, all started here on loopback, in one run. Each figure is the median of BENCH_RUNS runs.

const runs = Number(process.env.BENCH_RUNS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const name = 'docker-local/bench/app';
const distributionName = 'bench/app';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function medianOf<T>(measure: () => Promise<T>, pick: (value: T) => number[]): Promise<number[]> {
  const samples: number[][] = [];
  for (let i = 0; i < runs; i++) samples.push(pick(await measure()));
  return samples[0]!.map((_, column) => median(samples.map((sample) => sample[column]!)));
}

const rateColumns = (rate: Rate) => [rate.rps, rate.p99, rate.mbps];

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-bench-'));
  const servers: BenchServer[] = [];
  try {
    console.log('bench: preparing payloads in', payloadDir);
    const small = await payload('blob-1k', 1024);
    const medium = await payload('blob-4m', 4 << 20);
    const large = await payload('blob-1g', 1 << 30);
    const pushBlob = await payload('push-256m', 256 << 20);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const configBlob = await fixedPayload('config.json', config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configBlob.digest, size: configBlob.size },
      layers: [small, medium, large].map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }));
    const manifestFile = join(work, 'manifest.json');
    await writeFile(manifestFile, manifest);

    const wharf = await startWharf(work);
    const distribution = await startDistribution(work);
    const nginx = await startNginx(work, payloadDir, basename(small.path));
    const bare = await startBareNode(manifestFile, OCI_MANIFEST);
    servers.push(wharf, distribution, nginx, bare);
    console.log('bench: seeding Wharf and Distribution');
    for (const [server, image] of [[wharf, name], [distribution, distributionName]] as const) {
      for (const blob of [configBlob, small, medium, large]) await push(server.url.replace('/v2/', ''), image, blob, 'monolithic');
      await putManifest(server.url.replace('/v2/', ''), image, 'bench', manifest, OCI_MANIFEST);
    }
    const wharfBase = wharf.url.replace('/v2/', '');
    const distBase = distribution.url.replace('/v2/', '');
    const nginxBase = nginx.url.replace(/\/$/, '');
    const manifestUrl = (base: string, image: string) => `${base}/v2/${image}/manifests/bench`;
    const blobUrl = (base: string, image: string, digest: string) => `${base}/v2/${image}/blobs/${digest}`;
    const accept = { Accept: OCI_MANIFEST };
    const rows: Row[] = [];
    const measureRate = async (label: string, target: string, fn: (url: string) => Promise<Rate>, urls: Record<string, string>) => {
      const results: Record<string, number[]> = {};
      for (const [server, url] of Object.entries(urls)) {
        console.log(`bench: ${label} — ${server}`);
        await fn(url); // warm-up (JIT, page cache, connection pools), not counted
        results[server] = await medianOf(() => fn(url), rateColumns);
      }
      rows.push({ label, unit: 'req/s', target, values: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v[0]!])), p99: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v[1]!])), mbps: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v[2]!])) });
    };

    const byTag = { Wharf: manifestUrl(wharfBase, name), Distribution: manifestUrl(distBase, distributionName), 'node:http': bare.url };
    await measureRate('manifest GET by tag', '>= 0.6x node:http', (url) => getRate(url, { connections: 10, seconds, headers: accept }), byTag);
    await measureRate('manifest HEAD by tag', '-', (url) => loopRate(url, { method: 'HEAD', connections: 10, seconds, headers: accept }), byTag);
    await measureRate('1 KiB blob GET', '>= 10x Distribution', (url) => getRate(url, { connections: 10, seconds }), {
      Wharf: blobUrl(wharfBase, name, small.digest), Distribution: blobUrl(distBase, distributionName, small.digest), nginx: `${nginxBase}/${basename(small.path)}`,
    });
    await measureRate('4 MiB blob GET', '-', (url) => loopRate(url, { method: 'GET', connections: 4, seconds }), {
      Wharf: blobUrl(wharfBase, name, medium.digest), Distribution: blobUrl(distBase, distributionName, medium.digest), nginx: `${nginxBase}/${basename(medium.path)}`,
    });

    const largeUrls = { Wharf: blobUrl(wharfBase, name, large.digest), Distribution: blobUrl(distBase, distributionName, large.digest), nginx: `${nginxBase}/${basename(large.path)}` };
    // Streams: one untimed download each first (page cache, writeback of the seeded copy), then
    // the servers in a rotating order, so that no server always runs first.
    for (const url of Object.values(largeUrls)) await curlStreams(url, 1);
    let peakRss = 0;
    for (const streams of [1, 4]) {
      const samples: Record<string, number[]> = {};
      const servers = Object.keys(largeUrls);
      for (let i = 0; i < runs; i++) {
        for (const server of [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)]) {
          console.log(`bench: 1 GiB GET x${streams} — ${server}`);
          const { result, peakMiB } = await withPeakRss(wharf.pid, () => curlStreams(largeUrls[server as keyof typeof largeUrls], streams));
          if (server === 'Wharf' && streams === 4) peakRss = Math.max(peakRss, peakMiB);
          (samples[server] ??= []).push(result);
        }
      }
      const values = Object.fromEntries(Object.entries(samples).map(([server, list]) => [server, median(list)]));
      rows.push({ label: `1 GiB blob GET, ${streams} stream${streams > 1 ? 's' : ''}`, unit: 'MB/s', target: streams === 1 ? '>= 0.9x nginx' : '>= 1.0x nginx', values });
    }

    for (const mode of ['monolithic', 'chunked'] as const) {
      const values: Record<string, number> = {};
      for (const [server, base, image] of [['Wharf', wharfBase, name], ['Distribution', distBase, distributionName]] as const) {
        console.log(`bench: 256 MiB push ${mode} — ${server}`);
        values[server] = (await medianOf(() => push(base, image, pushBlob, mode), (v) => [v]))[0]!;
      }
      rows.push({ label: `256 MiB push, ${mode}`, unit: 'MB/s', target: mode === 'monolithic' ? '>= 1.0x Distribution' : '>= 1.5x Distribution', values });
    }

    const table = renderTable(rows, { peakRssMiB: peakRss, runs, seconds });
    console.log(`\n${table}`);
    await updateReadme(table);
  } finally {
    for (const server of servers) await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Replaces the table between the bench markers in README.md. */
async function updateReadme(table: string): Promise<void> {
  const readme = fileURLToPath(new URL('../../README.md', import.meta.url));
  const text = await readFile(readme, 'utf8').catch(() => null);
  const pattern = /(<!-- bench:start -->\n)[\s\S]*?(<!-- bench:end -->)/;
  if (!text || !pattern.test(text)) return;
  await writeFile(readme, text.replace(pattern, `$1${table}\n$2`));
  console.log('bench: README.md table updated');
}

main().catch((error: unknown) => {
  console.error('bench failed:', error);
  process.exitCode = 1;
});
