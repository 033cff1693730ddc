import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { push, putManifest } from './load.js';
import { fixedPayload } from './payload.js';
import { cpuSeconds, userSeconds } from './proc.js';
import { startManifestAnchor, startWharf, type BenchServer } from './servers.js';
import { rotatedMedians } from './stats.js';
import { buildsToCompare, runBench } from './builds.js';

// npm run bench:manifest [-- <dist/src/cli.js of another build> ...]: the bench's manifest GET by
// tag row alone (autocannon, 10 connections) with each server's CPU µs per request beside req/s
// (utime + stime from /proc, and utime alone): this build's Wharf, each build given (A/B) and the
// anchors bare node:http and the Hono floor (hono-floor.ts), taking turns in rotating order; medians of BENCH_RUNS (5). CPU per
// request moves less than req/s when others share the cores, but it moves too (preemption at each
// write, caches): compare builds within one run only. Hold the bench lock on a shared machine.

const runs = Number(process.env.BENCH_RUNS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const image = 'docker-local/bench/app';

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-manifest-cpu-'));
  const builds = buildsToCompare();
  const servers: Record<string, BenchServer> = {};
  try {
    // The full bench's manifest: a config and three layers (small ones here: only their descriptors matter).
    const config = await fixedPayload('config.json', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
    const layers = await Promise.all([1, 2, 3].map((n) => fixedPayload(`manifest-cpu-layer-${n}`, Buffer.from(`layer ${n}\n`.repeat(100)))));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }));
    const manifestFile = join(work, 'manifest.json');
    await writeFile(manifestFile, manifest);
    for (const [kind, cli] of Object.entries(builds)) {
      const server = await startWharf(join(work, kind), { cli });
      servers[kind] = server;
      const base = server.url.replace('/v2/', '');
      for (const blob of [config, ...layers]) await push(base, image, blob, 'monolithic');
      await putManifest(base, image, 'bench', manifest, OCI_MANIFEST);
    }
    for (const kind of ['node:http', 'Hono floor'] as const) servers[kind] = await startManifestAnchor(kind, manifestFile, OCI_MANIFEST);
    const urlOf = (kind: string) => (kind === 'node:http' ? servers[kind]!.url : `${servers[kind]!.url}${image}/manifests/bench`);
    const load = (kind: string, duration: number) => autocannon({ url: urlOf(kind), connections: 10, duration, headers: { Accept: OCI_MANIFEST } });
    for (const kind of Object.keys(servers)) await load(kind, 2); // warm-up (JIT), not counted
    const figures = await rotatedMedians<'rps' | 'cpuUs' | 'userUs'>(runs, Object.keys(servers), async (kind) => {
      const pid = servers[kind]!.pid;
      const [before, userBefore] = [await cpuSeconds(pid), await userSeconds(pid)];
      const result = await load(kind, seconds);
      const [cpu, user] = [(await cpuSeconds(pid)) - before, (await userSeconds(pid)) - userBefore];
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const run = { rps: result.requests.average, cpuUs: (cpu / result.requests.total) * 1e6, userUs: (user / result.requests.total) * 1e6 };
      console.log(`bench: manifest GET ${kind}: ${run.rps.toFixed(0)} req/s, ${run.cpuUs.toFixed(1)} µs CPU/request (user ${run.userUs.toFixed(1)})`);
      return run;
    });
    for (const kind of Object.keys(servers)) {
      console.log(`${kind.padEnd(11)} ${figures.rps[kind]!.toFixed(0).padStart(6)} req/s  ${figures.cpuUs[kind]!.toFixed(1).padStart(6)} µs CPU/request (user ${figures.userUs[kind]!.toFixed(1)})${kind in builds ? `  (${builds[kind]})` : ''}`);
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

runBench(main);
