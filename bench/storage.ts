
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestOf, parseDigest } from '../src/oci/digest.js';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { parseManifest } from '../src/oci/manifest.js';
import { openStore } from '../src/store/index.js';
import { postgresDatabase } from '../test/helpers/postgres.js';
import { s3Storage } from '../test/helpers/s3.js';
import { curlStreams, getRate, push, putManifest } from './load.js';
import { rssMiB } from './proc.js';
import type { Payload } from './payload.js';
import { freePort, startProcess, type BenchServer } from './servers.js';
import { rotatedMedian, rotatedMedians } from './stats.js';
import type { Row } from './table.js';

// Storage: the collector over 10,000 manifests and 50,000 blobs (wall time, peak RSS, and the
// longest a manifest GET waited while it ran, next to the same loop without it); manifest and
// 1 KiB blob rates on PostgreSQL + S3 (s3rver) next to SQLite + filesystem and Distribution;
// a 1 GiB GET from S3 streamed by Wharf next to a redirect to a presigned URL.

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Writes Wharf's config and starts it; `extra` is more YAML (storage, gc). */
async function startWharfWith(dir: string, extra: string): Promise<BenchServer & { stderr: () => string }> {
  const port = await freePort();
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, `dataDir: ${join(dir, 'data')}\nlisteners:\n  - { address: 127.0.0.1, port: ${port} }\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n${extra}`);
  let stderr = '';
  const server = await startProcess('Wharf', process.execPath, [cli, 'serve', '--config', config], `http://127.0.0.1:${port}/v2/`, { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, (chunk) => { stderr += chunk; });
  return { ...server, stderr: () => stderr };
}

/**
 * 10,000 manifests of 5 blobs each (50,000 blobs); half of them untagged, so a collection removes
 * 5,000 manifests and 25,000 blobs. Written straight into the store, without fsync: this is
 * seeding, not what is measured.
 */
export async function seed(dataDir: string): Promise<string> {
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true, log: () => undefined });
  const image = { repo: 'docker-local', name: 'bench/gc' };
  let tagged = '';
  for (let start = 0; start < 10_000; start += 500) {
    const manifests: { content: Buffer; tag: string | null }[] = [];
    const blobs: Buffer[] = [];
    for (let i = start; i < start + 500; i++) {
      const items = Array.from({ length: 5 }, () => randomBytes(64));
      blobs.push(...items);
      const descriptors = items.map((bytes) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(bytes), size: bytes.length }));
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...descriptors[0], mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: descriptors.slice(1) }));
      manifests.push({ content, tag: i % 2 === 0 ? `t${i}` : null });
    }
    for (const bytes of blobs) {
      const { hex } = parseDigest(digestOf(bytes))!;
      await mkdir(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2)), { recursive: true });
      await writeFile(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex), bytes);
    }
    await store.metadata.transaction(async (tx) => {
      for (const bytes of blobs) {
        await tx.blobs.claim(digestOf(bytes), bytes.length, 0);
        await tx.blobs.link(image, digestOf(bytes), bytes.length, 0);
      }
      for (const { content, tag } of manifests) await tx.manifests.push({ ...image, manifest: parseManifest(content), content, tag, now: 0 });
    });
    tagged = manifests[0]!.tag!;
  }
  await store.close();
  return tagged;
}

/** Sequential keep-alive GETs until `done` resolves: the longest and the 99th percentile wait. */
async function stalls(url: string, done: Promise<unknown>): Promise<{ max: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let finished = false;
  void done.finally(() => { finished = true; });
  while (!finished) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      request(url, { agent, headers: { Accept: OCI_MANIFEST } }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end();
    });
    latencies.push(performance.now() - started);
  }
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { max: latencies.at(-1) ?? 0, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

async function gcBench(work: string): Promise<{ rows: Row[]; notes: string[] }> {
  const dir = await mkdtemp(join(work, 'gc-'));
  console.log('bench: seeding 10,000 manifests and 50,000 blobs');
  const tag = await seed(join(dir, 'data'));
  const wharf = await startWharfWith(dir, 'gc: { interval: 3s, grace: 0s }\n');
  try {
    const url = `${wharf.url}docker-local/bench/gc/manifests/${tag}`;
    const quiet = await stalls(url, new Promise((resolve) => setTimeout(resolve, 2000)));
    console.log('bench: garbage collection in the server, manifest GETs meanwhile');
    let peak = 0;
    const sampler = setInterval(() => { rssMiB(wharf.pid).then((value) => { peak = Math.max(peak, value); }, () => undefined); }, 50);
    const collected = new Promise<number>((resolve) => {
      const poll = setInterval(() => {
        const match = /garbage collection: .* removed in ([\d.]+) s/.exec(wharf.stderr());
        if (match) { clearInterval(poll); resolve(Number(match[1])); }
      }, 20);
    });
    const during = await stalls(url, collected);
    clearInterval(sampler);
    const seconds = await collected;
    const summary = /garbage collection: (\d+) manifests, (\d+) blobs/.exec(wharf.stderr());
    return {
      rows: [
        { label: 'storage: GC of 10,000 manifests / 50,000 blobs, wall time (s)', unit: '', target: '-', values: { Wharf: seconds } },
        { label: 'storage: longest manifest GET during GC (ms)', unit: '', target: 'a few ms', values: { Wharf: during.max, 'Wharf idle': quiet.max } },
        { label: 'storage: p99 manifest GET during GC (ms)', unit: '', target: '-', values: { Wharf: during.p99, 'Wharf idle': quiet.p99 } },
      ],
      notes: [`GC removed ${summary?.[1]} manifests and ${summary?.[2]} blobs; Wharf peak RSS during it: ${peak.toFixed(0)} MiB.`],
    };
  } finally {
    await wharf.stop();
  }
}

export interface StorageBenchOptions {
  work: string;
  wharf: BenchServer;
  distribution: BenchServer;
  names: { wharf: string; distribution: string };
  payloads: { config: Payload; small: Payload; medium: Payload; large: Payload; manifest: Buffer };
  runs: number;
  seconds: number;
}

export async function storageBench(options: StorageBenchOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const { work, wharf, distribution, names, payloads, runs, seconds } = options;
  const gc = await gcBench(work);
  const rows: Row[] = [...gc.rows];
  const storage = { blobs: await s3Storage(), metadata: { driver: 'postgres', url: await postgresDatabase() } };
  const s3 = await startWharfWith(await mkdtemp(join(work, 's3-')), `storage: ${JSON.stringify(storage)}\n`);
  const redirecting = await startWharfWith(await mkdtemp(join(work, 's3r-')), `storage: ${JSON.stringify({ ...storage, blobs: { ...storage.blobs, redirect: true } })}\n`);
  try {
    console.log('bench: seeding Wharf on PostgreSQL + S3');
    const base = s3.url.replace('/v2/', '');
    for (const blob of [payloads.config, payloads.small, payloads.medium, payloads.large]) await push(base, names.wharf, blob, 'monolithic');
    await putManifest(base, names.wharf, 'bench', payloads.manifest, OCI_MANIFEST);
    const accept = { Accept: OCI_MANIFEST };
    const rateRow = async (label: string, path: (name: string) => string, headers: Record<string, string>) => {
      const urls: Record<string, string> = {
        Wharf: `${s3.url}${path(names.wharf)}`,
        'Wharf SQLite+fs': `${wharf.url}${path(names.wharf)}`,
        Distribution: `${distribution.url}${path(names.distribution)}`,
      };
      for (const url of Object.values(urls)) await getRate(url, { connections: 10, seconds: 1, headers });
      const results = await rotatedMedians(runs, Object.keys(urls), (server) => {
        console.log(`bench: ${label} — ${server}`);
        return getRate(urls[server]!, { connections: 10, seconds, headers });
      });
      rows.push({ label, unit: 'req/s', target: '-', values: results.rps, p99: results.p99 });
    };
    await rateRow('storage: manifest GET by tag, PostgreSQL+S3', (name) => `${name}/manifests/bench`, accept);
    await rateRow('storage: 1 KiB blob GET, PostgreSQL+S3', (name) => `${name}/blobs/${payloads.small.digest}`, {});
    const large: Record<string, string> = {
      Wharf: `${s3.url}${names.wharf}/blobs/${payloads.large.digest}`,
      'Wharf redirect': `${redirecting.url}${names.wharf}/blobs/${payloads.large.digest}`,
    };
    for (const url of Object.values(large)) await curlStreams(url, 1, ['-L']);
    const values = await rotatedMedian(runs, Object.keys(large), async (server) => {
      console.log(`bench: 1 GiB GET from S3 — ${server}`);
      return (await curlStreams(large[server]!, 1, ['-L'])).mbps;
    });
    rows.push({ label: 'storage: 1 GiB blob GET from S3 (s3rver), streamed vs redirect', unit: 'MB/s', target: '-', values });
  } finally {
    await s3.stop();
    await redirecting.stop();
  }
  return { rows, notes: gc.notes };
}

