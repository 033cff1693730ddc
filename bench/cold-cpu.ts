import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { warmFile } from './blob-runs.js';
import { startCounter } from './counter.js';
import { curlOnce, push, putManifest } from './load.js';
import { fixedPayload, payload } from './payload.js';
import { cpuSeconds, machineBusySeconds } from './proc.js';
import { startDistribution, startFloorProxy, startWharf, type BenchServer } from './servers.js';
import { rotatedMedians } from './stats.js';
import { buildsToCompare, runBench } from './builds.js';

// npm run bench:cold [-- <dist/src/cli.js of another build> ...]: one cold 1 GiB pull at a time,
// curl -> proxy -> counting nginx -> Distribution (the remote bench's chain), with the proxy's CPU
// seconds per GiB (utime + stime, until it has stored the blob) beside MB/s and first byte. The
// proxies: this build's Wharf, each build given (A/B), Distribution as a pull-through proxy and the
// Node floor (floor-proxy.ts: hash, temp file and client, nothing else); the anchor is a direct
// pull through the same nginx. They take turns in rotating order; medians
// of BENCH_RUNS (3). Beside them, the CPU seconds per GiB the whole machine spent on the pull (every
// process: curl, nginx, Distribution, the proxy, the kernel's writeback), after a sync so that no
// run pays for the dirty pages of the one before: where that total saturates the cores, a proxy
// can only approach the direct pull by costing less CPU. Hold the bench lock on a shared machine.

const runs = Number(process.env.BENCH_RUNS ?? 3);
const image = 'bench/app';

/** CPU seconds of `pid` once it has stopped using any (the commit after the last byte sent). */
async function cpuWhenQuiet(pid: number): Promise<number> {
  let last = await cpuSeconds(pid);
  for (let i = 0; i < 100; i++) {
    await sleep(300);
    const now = await cpuSeconds(pid);
    if (now - last < 0.02) return now;
    last = now;
  }
  return last;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-cold-cpu-'));
  const builds = buildsToCompare();
  const origin = await startDistribution(work);
  try {
    const large = await payload('blob-1g', 1 << 30);
    const config = await fixedPayload('config.json', Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
    const base = origin.url.replace('/v2/', '');
    for (const blob of [config, large]) await push(base, image, blob, 'monolithic');
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: large.digest, size: large.size }] };
    await putManifest(base, image, 'bench', Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
    const gib = large.size / 2 ** 30;
    const kinds = [...Object.keys(builds), 'Distribution', 'Node floor', 'upstream direct'];
    const figures = await rotatedMedians<'mbps' | 'firstByteMs' | 'cpuPerGiB' | 'machinePerGiB'>(runs, kinds, async (kind) => {
      await warmFile(origin.blobFile!(large.digest));
      const counter = await startCounter(work, base);
      const dir = await mkdtemp(join(work, 'proxy-'));
      let proxy: BenchServer | null = null;
      if (kind === 'Distribution') proxy = await startDistribution(dir, counter.url);
      else if (kind === 'Node floor') proxy = await startFloorProxy(dir, counter.url);
      else if (kind !== 'upstream direct') proxy = await startWharf(dir, { upstream: counter.url, cli: builds[kind]! });
      try {
        const path = !proxy ? `${counter.url}/v2/${image}` : kind in builds ? `${proxy.url}docker-remote/${image}` : `${proxy.url}${image}`;
        await (await fetch(`${path}/manifests/bench`, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer();
        await promisify(execFile)('sync');
        const before = proxy ? await cpuSeconds(proxy.pid) : 0;
        const machineBefore = await machineBusySeconds();
        const started = performance.now();
        const pulled = await curlOnce(`${path}/blobs/${large.digest}`);
        const mbps = pulled.bytes / ((performance.now() - started) / 1000) / 1e6;
        const cpu = proxy ? { cpuPerGiB: ((await cpuWhenQuiet(proxy.pid)) - before) / gib } : {};
        // Until the proxy is quiet (its commit), then what the page cache still owes the disk.
        await promisify(execFile)('sync');
        const machinePerGiB = ((await machineBusySeconds()) - machineBefore) / gib;
        const run = { mbps, firstByteMs: pulled.firstByte * 1000, ...cpu, machinePerGiB };
        console.log(`bench: cold pull ${kind}: ${JSON.stringify(run)}`);
        return run;
      } finally {
        await proxy?.stop();
        await counter.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
    for (const kind of kinds) {
      const cpu = figures.cpuPerGiB[kind];
      console.log(`${kind.padEnd(16)} ${figures.mbps[kind]!.toFixed(0).padStart(5)} MB/s  first byte ${figures.firstByteMs[kind]!.toFixed(1)} ms  machine CPU ${figures.machinePerGiB[kind]!.toFixed(2)} s/GiB${cpu === undefined ? '' : `  proxy CPU ${cpu.toFixed(2)} s/GiB`}${kind in builds ? `  (${builds[kind]})` : ''}`);
    }
  } finally {
    await origin.stop();
    await rm(work, { recursive: true, force: true });
  }
}

runBench(main);
