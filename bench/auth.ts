import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { getRate } from './load.js';
import { startWharf, type BenchServer } from './servers.js';
import { rotatedMedian } from './stats.js';
import type { Row } from './table.js';

// What access control costs on the hot path (issue 8 §7: at most 15% of manifest-GET req/s):
// Wharf with auth on, sent a bearer token (or Basic) on every request, against Wharf with
// auth: { enabled: false }, the same image in both, in turns. And the token endpoint's rate.

export interface AuthBenchOptions {
  work: string;
  /** The Wharf the other rows measure: auth off, the anchor here. */
  open: BenchServer;
  runs: number;
  seconds: number;
}

export const user = { name: 'bench', password: 'bench-password' };
export const name = 'docker-local/bench/auth';

/** The same small image (config only) in a registry, pushed with `headers` (Basic where auth is on). */
export async function seed(base: string, headers: Record<string, string>): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const blob = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: config, headers });
  if (blob.status !== 201) throw new Error(`seed blob: ${blob.status}`);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length }, layers: [] });
  const put = await fetch(`${base}/v2/${name}/manifests/bench`, { method: 'PUT', body: manifest, headers: { ...headers, 'Content-Type': OCI_MANIFEST } });
  if (put.status !== 201) throw new Error(`seed manifest: ${put.status}`);
}

export async function authBench(options: AuthBenchOptions): Promise<{ rows: Row[]; server: BenchServer }> {
  const { work, open, runs, seconds } = options;
  const dir = join(work, 'auth');
  await mkdir(dir, { recursive: true });
  const secured = await startWharf(dir, { user });
  const basic = `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`;
  const [openBase, securedBase] = [open.url.replace(/\/v2\/$/, ''), secured.url.replace(/\/v2\/$/, '')];
  await seed(openBase, {});
  await seed(securedBase, { authorization: basic });
  const tokenUrl = `${securedBase}/v2/token?service=wharf&scope=repository:${name}:pull`;
  const login = await (await fetch(`${tokenUrl}&offline_token=true`, { headers: { authorization: basic } })).json() as { token: string; refresh_token: string };
  const accept = { Accept: OCI_MANIFEST };
  const path = `/v2/${name}/manifests/bench`;
  const rows: Row[] = [];
  // Bearer, Basic and auth off take turns in one rotation, so both ratios share one anchor's runs
  // (two rotations measured "auth off" 24% apart in one run), over at least 5 runs.
  const off = 'Wharf, auth off';
  const sent: Record<string, [string, Record<string, string>]> = {
    [off]: [`${openBase}${path}`, {}],
    'auth: manifest GET by tag, bearer token': [`${securedBase}${path}`, { authorization: `Bearer ${login.token}` }],
    'auth: manifest GET by tag, Basic': [`${securedBase}${path}`, { authorization: basic }],
  };
  for (const [url, extra] of Object.values(sent)) await getRate(url, { connections: 10, seconds: 1, headers: { ...accept, ...extra } }); // warm-up
  const rates = await rotatedMedian(Math.max(runs, 5), Object.keys(sent), async (label) => {
    console.log(`bench: ${label}`);
    const [url, extra] = sent[label]!;
    return (await getRate(url, { connections: 10, seconds, headers: { ...accept, ...extra } })).rps;
  });
  for (const label of Object.keys(sent).filter((label) => label !== off)) {
    rows.push({ label, unit: 'req/s', target: '>= 0.85x Wharf, auth off', values: { Wharf: rates[label]!, [off]: rates[off]! } });
  }
  // The token endpoint: a docker pull's login (Basic, checked against the database, the scrypt
  // result remembered), docker's refresh-token POST, and an anonymous token.
  const tokenRates: [string, Parameters<typeof getRate>[1] & { url: string }][] = [
    ['auth: token endpoint, GET with Basic', { url: tokenUrl, connections: 10, seconds, headers: { authorization: basic } }],
    ['auth: token endpoint, POST refresh_token', {
      url: `${securedBase}/v2/token`, connections: 10, seconds, method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: login.refresh_token, service: 'wharf', scope: `repository:${name}:pull` }).toString(),
    }],
    ['auth: token endpoint, GET anonymous', { url: tokenUrl, connections: 10, seconds }],
  ];
  for (const [label, { url, ...rate }] of tokenRates) {
    await getRate(url, { ...rate, seconds: 1 });
    const values = await rotatedMedian(runs, ['Wharf'], async () => {
      console.log(`bench: ${label}`);
      return (await getRate(url, rate)).rps;
    });
    rows.push({ label, unit: 'req/s', target: 'reported', values });
  }
  return { rows, server: secured };
}
