import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { authBench } from './auth.js';
import { localBench } from './local.js';
import { managementBench } from './management.js';
import { push, putManifest } from './load.js';
import { fixedPayload, payload, payloadDir } from './payload.js';
import { offloadBench } from './offload.js';
import { startDistribution, startManifestAnchor, startNginx, startWharf, wharfBlobDirectory, type BenchServer } from './servers.js';
import { remoteBench } from './remote.js';
import { storageBench } from './storage.js';
import { tlsBench } from './tls.js';
import { renderTable, type Row } from './table.js';

// npm run bench: Wharf against CNCF Distribution 2.8.2, nginx (sendfile, from Wharf's own blob
// files), a bare node:http server and the Hono floor (hono-floor.ts), all started here on
// loopback, in one run. Each figure is the median of BENCH_RUNS rotating runs. BENCH_ONLY=local,
// tls, offload, auth, remote, storage or management runs one part.

const runs = Number(process.env.BENCH_RUNS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const name = 'docker-local/bench/app';
const distributionName = 'bench/app';

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-bench-'));
  const servers: BenchServer[] = [];
  try {
    if (process.env.BENCH_ONLY === 'management') {
      // Its own server and data: none of the payloads or anchors below.
      const table = renderTable(await managementBench({ work, runs, seconds }), { peakRssMiB: 0, runs, seconds });
      console.log(`\n${table}`);
      await updateReadme(table, 'bench-management');
      return;
    }
    console.log('bench: preparing payloads in', payloadDir);
    if (process.env.BENCH_ONLY === 'offload') {
      // Its own Wharf and nginx, and only the 1 GiB payload: none of the servers seeded below.
      const rows = await offloadBench({ work, large: await payload('blob-1g', 1 << 30), runs });
      console.log(`\n${renderTable(rows, { peakRssMiB: 0, runs, seconds })}`);
      return;
    }
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

    const distribution = await startDistribution(work);
    const wharf = await startWharf(work, { workers: 1 });
    const certs = { cert: join(work, 'certs', 'server.crt'), key: join(work, 'certs', 'server.key') };
    const nginx = await startNginx(work, wharfBlobDirectory(work), certs);
    const bare = await startManifestAnchor('node:http', manifestFile, OCI_MANIFEST);
    const honoFloor = await startManifestAnchor('Hono floor', manifestFile, OCI_MANIFEST);
    // The same build with one worker per core, for the workers row.
    const wharfAuto = await startWharf(join(work, 'workers-auto'), { workers: 'auto' });
    servers.push(wharf, distribution, nginx, bare, honoFloor, wharfAuto);
    console.log('bench: seeding Wharf and Distribution');
    for (const [server, image] of [[wharf, name], [distribution, distributionName], [wharfAuto, name]] as const) {
      for (const blob of [configBlob, small, medium, large]) await push(server.url.replace('/v2/', ''), image, blob, 'monolithic');
      await putManifest(server.url.replace('/v2/', ''), image, 'bench', manifest, OCI_MANIFEST);
    }
    const only = process.env.BENCH_ONLY;
    const rows: Row[] = [];
    const notes: string[] = [];
    const part = (name: string) => !only || only === name;
    let peakRssMiB = 0;
    if (part('auth')) {
      const auth = await authBench({ work, open: wharf, runs, seconds });
      servers.push(auth.server);
      rows.push(...auth.rows);
    }
    if (part('local')) {
      const local = await localBench({
        wharf, wharfAuto, distribution, nginx, bare, honoFloor,
        names: { wharf: name, distribution: distributionName },
        payloads: { small, medium, large, push: pushBlob },
        runs, seconds,
      });
      rows.push(...local.rows);
      peakRssMiB = local.peakRssMiB;
    }
    if (part('tls')) {
      rows.push(...await tlsBench({ wharf, nginx, caPath: join(work, 'certs', 'ca.crt'), name, large, runs, seconds }));
    }
    if (part('offload')) rows.push(...await offloadBench({ work, large, runs }));
    if (part('remote')) {
      const origin = distribution.url.replace('/v2/', '');
      rows.push(...await remoteBench({ work, origin, originFile: distribution.blobFile!(large.digest), image: distributionName, large, runs, seconds }));
    }
    if (part('storage')) {
      const storage = await storageBench({
        work, wharf, distribution, names: { wharf: name, distribution: distributionName },
        payloads: { config: configBlob, small, medium, large, manifest }, runs, seconds,
      });
      rows.push(...storage.rows);
      notes.push(...storage.notes);
    }

    if (part('management')) rows.push(...await managementBench({ work, runs, seconds }));

    const table = renderTable(rows, { peakRssMiB, runs, seconds, notes });
    console.log(`\n${table}`);
    // A complete run replaces the table in README; a storage-only run its own table.
    if (!only) await updateReadme(table, 'bench');
    if (only === 'storage') await updateReadme(table, 'bench-storage');
  } finally {
    for (const server of servers) await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Replaces the table between the `marker` comments in README.md. */
async function updateReadme(table: string, marker: string): Promise<void> {
  const readme = fileURLToPath(new URL('../../README.md', import.meta.url));
  const text = await readFile(readme, 'utf8').catch(() => null);
  const pattern = new RegExp(`(<!-- ${marker}:start -->\n)[\\s\\S]*?(<!-- ${marker}:end -->)`);
  if (!text || !pattern.test(text)) return;
  await writeFile(readme, text.replace(pattern, `$1${table}\n$2`));
  console.log('bench: README.md table updated');
}

main().catch((error: unknown) => {
  console.error('bench failed:', error);
  process.exitCode = 1;
});
