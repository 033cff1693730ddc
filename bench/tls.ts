import { OCI_MANIFEST } from '../src/oci/mediatypes.js';
import { blobFigures } from './blob-runs.js';
import { curlStreams, getRate, h2load } from './load.js';
import type { Payload } from './payload.js';
import { blobPath, type BenchServer } from './servers.js';
import { rotatedMedian } from './stats.js';
import type { Row } from './table.js';

// Wharf terminating TLS: HTTPS (HTTP/1.1 and h2) next to its own plain HTTP, and next to nginx
// terminating TLS for the very same blob file with the same certificate.

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
  const headers = { Accept: OCI_MANIFEST };
  const path = `/v2/${name}/manifests/bench`;
  const plainBase = wharf.url.replace(/\/v2\/$/, '');
  const rows: Row[] = [];
  // The three are measured in turns, so that a quiet or busy spell of this machine is shared.
  const manifestRates: Record<string, () => Promise<number>> = {
    plain: async () => (await getRate(`${plainBase}${path}`, { connections: 10, seconds, headers })).rps,
    https1: async () => (await getRate(`${wharf.tlsUrl}${path}`, { connections: 10, seconds, headers })).rps,
    h2: async () => (await h2load(`${wharf.tlsUrl}${path}`, { protocol: 'h2', connections: 10, streams: 10, seconds, headers })).rps,
  };
  for (const measure of Object.values(manifestRates)) await measure(); // warm-up
  const { plain, https1, h2 } = await rotatedMedian(runs, Object.keys(manifestRates), (kind) => {
    console.log(`bench: manifest GET, Wharf ${kind}`);
    return manifestRates[kind]!();
  });
  rows.push({ label: 'TLS: manifest GET, HTTPS/1.1 keep-alive', unit: 'req/s', target: '>= 0.7x Wharf plain', values: { Wharf: https1, 'Wharf plain': plain } });
  rows.push({ label: 'TLS: manifest GET, h2 (10 sessions x 10 streams)', unit: 'req/s', target: '-', values: { Wharf: h2, 'Wharf plain': plain } });

  const blob = `/v2/${name}/blobs/${large.digest}`;
  const file = wharf.blobFile!(large.digest);
  const sources = {
    Wharf: { url: `${wharf.tlsUrl}${blob}`, file, pids: [wharf.pid] },
    nginx: { url: `${nginx.tlsUrl}/${blobPath(large.digest)}`, file, pids: [nginx.pid] },
    'Wharf plain': { url: `${plainBase}${blob}`, file, pids: [wharf.pid] },
  };
  for (const [protocol, flag] of [['HTTPS/1.1', '--http1.1'], ['h2', '--http2']] as const) {
    const label = `TLS: 1 GiB blob GET, ${protocol}`;
    const figures = await blobFigures(label, { runs, sources, load: (url) => curlStreams(url, 1, ['--cacert', caPath, flag]) });
    rows.push({ label, unit: 'MB/s', target: protocol === 'HTTPS/1.1' ? '>= 0.8x nginx (HTTPS)' : '-', values: figures.mbps });
  }
  return rows;
}
