import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { name, seed, user } from './auth.js';
import { cpuSeconds } from './proc.js';
import { startWharf, type BenchServer } from './servers.js';
import { median } from './stats.js';
import { buildsToCompare } from './builds.js';

// npm run bench:auth-cpu [-- <dist/src/cli.js of another build> ...]: the server's CPU time per
// manifest GET by tag (utime + stime over the run / requests answered) and req/s, with auth off,
// a bearer token and Basic on every request; each build given beside this one (A/B), the runs
// alternating build by build. Medians of BENCH_RUNS (3) runs of BENCH_SECONDS (3) each. Hold the
// bench lock on a shared machine.

const runs = Number(process.env.BENCH_RUNS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const modes = (process.env.AUTH_MODES ?? 'off,bearer,basic').split(',');

interface Build {
  open: BenchServer;
  secured: BenchServer;
  headers: Record<string, Record<string, string>>;
}

function base(server: BenchServer): string {
  return server.url.replace(/\/v2\/$/, '');
}

async function startBuild(work: string, label: string, cli: string): Promise<Build> {
  const open = await startWharf(join(work, `${label}-open`), { cli });
  const secured = await startWharf(join(work, `${label}-auth`), { cli, user });
  const basic = `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`;
  await seed(base(open), {});
  await seed(base(secured), { authorization: basic });
  const login = await (await fetch(`${base(secured)}/v2/token?service=wharf&scope=repository:${name}:pull`, { headers: { authorization: basic } })).json() as { token: string };
  return { open, secured, headers: { off: {}, bearer: { authorization: `Bearer ${login.token}` }, basic: { authorization: basic } } };
}

async function measure(build: Build, mode: string, duration: number): Promise<{ us: number; rps: number }> {
  const server = mode === 'off' ? build.open : build.secured;
  const before = await cpuSeconds(server.pid);
  const result = await autocannon({ url: `${base(server)}/v2/${name}/manifests/bench`, connections: 10, duration, headers: { Accept: OCI_MANIFEST, ...build.headers[mode] } });
  const after = await cpuSeconds(server.pid);
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${mode}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { us: ((after - before) * 1e6) / result.requests.total, rps: result.requests.average };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-auth-cpu-'));
  const clis = buildsToCompare('A');
  const builds: Record<string, Build> = {};
  try {
    for (const [label, cli] of Object.entries(clis)) builds[label] = await startBuild(work, label, cli);
    for (const build of Object.values(builds)) for (const mode of modes) await measure(build, mode, 1); // warm-up
    const samples: Record<string, { us: number[]; rps: number[] }> = {};
    for (let i = 0; i < runs; i++) {
      for (const mode of modes) {
        const labels = Object.keys(builds);
        for (const label of i % 2 ? labels.reverse() : labels) {
          const { us, rps } = await measure(builds[label]!, mode, seconds);
          const key = `${label} ${mode}`;
          (samples[key] ??= { us: [], rps: [] }).us.push(us);
          samples[key]!.rps.push(rps);
          console.log(`${key}: ${us.toFixed(1)} µs/req, ${rps.toFixed(0)} req/s`);
        }
      }
    }
    for (const [key, { us, rps }] of Object.entries(samples)) console.log(`median ${key}: ${median(us).toFixed(1)} µs/req, ${median(rps).toFixed(0)} req/s`);
  } finally {
    for (const build of Object.values(builds)) await Promise.all([build.open.stop(), build.secured.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
