import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../src/oci/digest.js';
import { summarizeImage } from '../src/oci/image-config.js';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { parseManifest } from '../src/oci/manifest.js';
import { openStore } from '../src/store/index.js';
import { getRate } from './load.js';
import { freePort, startProcess } from './servers.js';
import { rotatedMedians } from './stats.js';
import type { Row } from './table.js';

// Repository management over 10,000 images (docker-local/bench/img-00000 … img-09999, each with a
// tag and a label from the image config) and one image with 10,000 tags: catalog and tag pages
// (n=100, from the middle), search by label, by image-name wildcard and by digest, and a manifest
// GET by tag through a virtual repository next to the same GET from its local member.
// Seeded straight into the store (seeding is not what is measured).

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const images = 10_000;
const pad = (i: number) => String(i).padStart(5, '0');

export async function seedManagement(dataDir: string): Promise<string> {
  const store = await openStore({ dataDir, blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' }, recover: true, log: () => undefined });
  const layer = randomBytes(64);
  const layerDigest = digestOf(layer);
  let middleDigest = '';
  const manifestOf = (config: Buffer) => Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  }));
  const push = async (tx: Parameters<Parameters<typeof store.metadata.transaction>[0]>[0], name: string, tags: string[], group: number) => {
    const image = { repo: 'docker-local', name };
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { 'bench.group': `g${group}`, 'bench.name': name } } }));
    for (const [digest, size] of [[digestOf(config), config.length], [layerDigest, layer.length]] as const) {
      await tx.blobs.claim(digest, size, 0);
      await tx.blobs.link(image, digest, size, 0);
    }
    const content = manifestOf(config);
    const summary = summarizeImage(content, config);
    const info = { ...summary, details: JSON.stringify(summary.details) };
    for (const tag of tags) await tx.manifests.push({ ...image, manifest: parseManifest(content), content, tag, now: Date.now(), info });
    return digestOf(content);
  };
  for (let start = 0; start < images; start += 500) {
    await store.metadata.transaction(async (tx) => {
      for (let i = start; i < start + 500; i++) {
        const digest = await push(tx, `bench/img-${pad(i)}`, ['latest'], i % 100);
        if (i === images / 2) middleDigest = digest;
      }
    });
  }
  for (let start = 0; start < images; start += 2000) {
    await store.metadata.transaction(async (tx) => {
      await push(tx, 'bench/tags', Array.from({ length: 2000 }, (_, i) => `t${pad(start + i)}`), 0);
    });
  }
  await store.close();
  return middleDigest;
}

export async function managementBench(options: { work: string; runs: number; seconds: number }): Promise<Row[]> {
  const dir = await mkdtemp(join(options.work, 'management-'));
  console.log(`bench: seeding ${images.toLocaleString('en-US')} images and an image with ${images.toLocaleString('en-US')} tags`);
  const digest = await seedManagement(join(dir, 'data'));
  const port = await freePort();
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, [
    `dataDir: ${join(dir, 'data')}`,
    'listeners:', `  - { address: 127.0.0.1, port: ${port} }`,
    'repositories:', '  docker-local: { type: local }', '  docker: { type: virtual, repositories: [docker-local] }',
    'log: { access: false }', 'auth: { enabled: false }', 'gc: { interval: 0s }', '',
  ].join('\n'));
  const wharf = await startProcess('Wharf', process.execPath, [cli, 'serve', '--config', config], `http://127.0.0.1:${port}/v2/`);
  const base = `http://127.0.0.1:${port}`;
  const rate = (url: string, headers: Record<string, string> = {}) => getRate(url, { connections: 10, seconds: options.seconds, headers });
  const rows: Row[] = [];
  const single = async (label: string, target: string, url: string) => {
    await rate(url); // warm-up, not counted
    const result = await rotatedMedians(options.runs, ['Wharf'], () => { console.log(`bench: ${label}`); return rate(url); });
    rows.push({ label, unit: 'req/s', target, values: result.rps, p99: result.p99 });
  };
  try {
    await single('management: catalog page (n=100) of 10,000 images', '-', `${base}/api/docker/docker-local/v2/_catalog?n=100&last=bench%2Fimg-05000`);
    await single('management: tags/list page (n=100) of 10,000 tags', '-', `${base}/v2/docker-local/bench/tags/tags/list?n=100&last=t05000`);
    await single('management: search by label (100 of 10,000 match, n=50)', 'milliseconds', `${base}/api/search/docker?label=bench.group%3Dg42&n=50`);
    await single('management: search by image wildcard (n=50)', 'milliseconds', `${base}/api/search/docker?image=bench%2Fimg-05*&n=50`);
    await single('management: search by digest', 'milliseconds', `${base}/api/search/docker?digest=${digest}`);
    const accept = { Accept: OCI_MANIFEST };
    const urls = { Wharf: `${base}/v2/docker/bench/img-05000/manifests/latest`, 'Wharf local member': `${base}/v2/docker-local/bench/img-05000/manifests/latest` };
    for (const url of Object.values(urls)) await rate(url, accept);
    const result = await rotatedMedians(options.runs, Object.keys(urls), (server) => {
      console.log(`bench: manifest GET by tag — ${server}`);
      return rate(urls[server as keyof typeof urls], accept);
    });
    rows.push({ label: 'management: manifest GET by tag through the virtual repository', unit: 'req/s', target: '>= 0.8x Wharf local member', values: result.rps, p99: result.p99 });
  } finally {
    await wharf.stop();
  }
  return rows;
}
