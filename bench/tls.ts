import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { curlStreams, getRate, h2Rate } from './load.js';
import type { Payload } from './payload.js';
import type { BenchServer } from './servers.js';
import { median, medianOf } from './stats.js';
import type { Row } from './table.js';

// Wharf terminating TLS: HTTPS (HTTP/1.1 and h2) next to its own plain HTTP, and next to nginx
// terminating TLS for the same file with the same certificate.

export interface TlsBenchOptions {
  wharf: BenchServer;
  nginx: BenchServer;
  caPath: string;
  name: string;
  large: Payload;
  runs: number;
  seconds: number;
}

export async function tlsBench(options: TlsBenchOptions): Promise<Row[]> {
  const { wharf, nginx, caPath, name, large, runs, seconds } = options;
  const ca = await readFile(caPath, 'utf8');
  const headers = { Accept: OCI_MANIFEST };
  const path = `/v2/${name}/manifests/bench`;
  const plainBase = wharf.url.replace(/\/v2\/$/, '');
  const rate = async (label: string, measure: () => Promise<number>) => {
    console.log(`bench: ${label}`);
    await measure(); // warm-up
    return (await medianOf(runs, measure, (value) => [value]))[0]!;
  };
  const rows: Row[] = [];
  const plain = await rate('manifest GET, Wharf plain HTTP', async () => (await getRate(`${plainBase}${path}`, { connections: 10, seconds, headers })).rps);
  const https1 = await rate('manifest GET, Wharf HTTPS/1.1', async () => (await getRate(`${wharf.tlsUrl}${path}`, { connections: 10, seconds, headers })).rps);
  const h2 = await rate('manifest GET, Wharf h2', async () => (await h2Rate(wharf.tlsUrl!, path, { streams: 10, seconds, ca, headers })).rps);
  rows.push({ label: 'TLS: manifest GET, HTTPS/1.1 keep-alive', unit: 'req/s', target: '>= 0.7x Wharf plain', values: { Wharf: https1, 'Wharf plain': plain } });
  rows.push({ label: 'TLS: manifest GET, h2 (10 streams)', unit: 'req/s', target: '-', values: { Wharf: h2, 'Wharf plain': plain } });

  const blob = `/v2/${name}/blobs/${large.digest}`;
  const file = `/${basename(large.path)}`;
  for (const [protocol, flag] of [['HTTPS/1.1', '--http1.1'], ['h2', '--http2']] as const) {
    const values: Record<string, number[]> = {};
    const targets = { Wharf: `${wharf.tlsUrl}${blob}`, nginx: `${nginx.tlsUrl}${file}`, 'Wharf plain': `${plainBase}${blob}` };
    for (const url of Object.values(targets)) await curlStreams(url, 1, ['--cacert', caPath, flag]);
    for (let i = 0; i < runs; i++) {
      for (const [server, url] of Object.entries(targets)) {
        console.log(`bench: 1 GiB GET ${protocol} — ${server}`);
        (values[server] ??= []).push(await curlStreams(url, 1, ['--cacert', caPath, flag]));
      }
    }
    rows.push({
      label: `TLS: 1 GiB blob GET, ${protocol}`,
      unit: 'MB/s',
      target: protocol === 'HTTPS/1.1' ? '>= 0.8x nginx (HTTPS)' : '-',
      values: Object.fromEntries(Object.entries(values).map(([server, list]) => [server, median(list)])),
    });
  }
  return rows;
}
