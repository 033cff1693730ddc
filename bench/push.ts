import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { warmFile } from './blob-runs.js';
import { push } from './load.js';
import { freshBlob, payload } from './payload.js';
import { cpuSeconds } from './proc.js';
import { startDistribution, startWharf, type BenchServer } from './servers.js';
import { rotatedMedians } from './stats.js';
import { buildsToCompare, runBench } from './builds.js';

// npm run bench:push [-- <dist/src/cli.js of another build> ...]: the local bench's 256 MiB push
// rows (BENCH_PUSH=chunked|monolithic, chunked unless given) with the server's CPU seconds per GiB
// (utime + stime, its processes) and the bench client's, beside MB/s. The servers: this build's
// Wharf, each build given (A/B) and Distribution; they take turns in rotating order; medians of
// BENCH_RUNS (3). Hold the bench lock on a shared machine.

const runs = Number(process.env.BENCH_RUNS ?? 3);
const mode = process.env.BENCH_PUSH === 'monolithic' ? 'monolithic' : 'chunked';

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-push-'));
  const builds = buildsToCompare();
  const servers: Record<string, BenchServer> = {};
  try {
    for (const [kind, cli] of Object.entries(builds)) servers[kind] = await startWharf(join(work, kind), { cli });
    servers.Distribution = await startDistribution(join(work, 'distribution'));
    const blob = await payload('push-256m', 256 << 20);
    const gib = blob.size / 2 ** 30;
    await warmFile(blob.path);
    // One untimed push each (JIT, first collections): a server's first push runs at 60-70% of the later ones.
    const pushTo = async (kind: string) => push(servers[kind]!.url.replace('/v2/', ''), kind === 'Distribution' ? 'bench/app' : 'docker-local/bench/app', await freshBlob(blob), mode);
    for (const kind of Object.keys(servers)) await pushTo(kind);
    const figures = await rotatedMedians<'mbps' | 'serverCpuPerGiB' | 'clientCpuPerGiB'>(runs, Object.keys(servers), async (kind) => {
      const server = servers[kind]!;
      const [serverBefore, clientBefore] = [await cpuSeconds(server.pid), process.cpuUsage()];
      const mbps = await pushTo(kind);
      const client = process.cpuUsage(clientBefore);
      const run = { mbps, serverCpuPerGiB: ((await cpuSeconds(server.pid)) - serverBefore) / gib, clientCpuPerGiB: (client.user + client.system) / 1e6 / gib };
      console.log(`bench: 256 MiB push ${mode}, ${kind}: ${JSON.stringify(run)}`);
      return run;
    });
    for (const kind of Object.keys(servers)) {
      console.log(`${kind.padEnd(13)} ${figures.mbps[kind]!.toFixed(0).padStart(5)} MB/s  server CPU ${figures.serverCpuPerGiB[kind]!.toFixed(2)} s/GiB  client CPU ${figures.clientCpuPerGiB[kind]!.toFixed(2)} s/GiB${kind in builds ? `  (${builds[kind]})` : ''}`);
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

runBench(main);
