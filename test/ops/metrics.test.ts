import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log/logger.js';
import { startServer } from '../../src/server.js';
import { makeImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pushImage, seedImage } from '../helpers/registry.js';
import { startWharf, tempDir } from '../helpers/server.js';
import { startDistribution } from '../helpers/upstream.js';

// /metrics through prom-client: what an operator graphs, with labels that stay few whatever
// the traffic (route classes, never paths).

/** Parses the exposition text into "name{labels}" → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  return new Map([...text.matchAll(/^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

test('requests, latency, bytes, uploads in progress and storage per repository, by route class', async () => {
  const distribution = await startDistribution();
  const down = await freePort();
  const wharf = await startWharf({
    repositories: {
      'docker-local': { type: 'local' },
      hub: { type: 'remote', url: distribution.url },
      gone: { type: 'remote', url: `http://127.0.0.1:${down}`, offlineAfter: 100 },
      docker: { type: 'virtual', repositories: ['docker-local', 'hub'] },
    },
  });
  try {
    const image = makeImage({ layers: 2, layerBytes: 5000 });
    await pushImage(wharf.url, 'docker-local/team/app', image, '1.0');
    const layer = image.layers[0]!;
    await (await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${layer.digest}`)).arrayBuffer();
    const session = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' });
    assert.is(session.status, 202);
    await seedImage(distribution.url, 'team/tool', makeImage(), '2.0');
    assert.is((await fetch(`${wharf.url}/v2/hub/team/tool/manifests/2.0`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
    assert.is((await fetch(`${wharf.url}/v2/gone/team/tool/manifests/2.0`)).status, 502);

    const response = await fetch(`${wharf.url}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', 'text/plain; version=0.0.4');
    const metrics = await scrape(`${wharf.url}/metrics`);
    assert.ok(metrics.get('wharf_http_requests_total{route="manifest",method="PUT",status="201"}')! >= 1);
    assert.ok(metrics.get('wharf_http_requests_total{route="upload",method="POST",status="201"}')! >= 3, 'monolithic blob pushes');
    assert.ok(metrics.get('wharf_http_request_duration_seconds_count{route="blob",method="GET",status="200"}')! >= 1);
    assert.ok(metrics.has('wharf_http_request_duration_seconds_bucket{le="0.005",route="blob",method="GET",status="200"}'));
    assert.ok(metrics.get('wharf_http_response_body_bytes_total{route="blob"}')! >= layer.bytes.length);
    const pushed = image.config.bytes.length + image.layers.reduce((sum, item) => sum + item.bytes.length, 0);
    assert.ok(metrics.get('wharf_http_request_body_bytes_total{route="upload"}')! >= pushed);
    assert.is(metrics.get('wharf_uploads_in_progress'), 1, 'the session opened and left open');
    assert.is(metrics.get('wharf_storage_bytes{repository="docker-local"}'), pushed);
    assert.not.ok(metrics.has('wharf_storage_bytes{repository="docker"}'), 'a virtual repository holds nothing of its own');
    assert.ok(metrics.get('wharf_upstream_request_duration_seconds_count{repository="hub",outcome="ok"}')! >= 1);
    assert.ok(metrics.get('wharf_upstream_request_duration_seconds_count{repository="gone",outcome="error"}')! >= 1);
    assert.is(metrics.get('wharf_cache_misses_total{repository="hub"}'), 1, 'the cache counters keep their names');
    assert.ok(metrics.get('wharf_upstream_errors_total{repository="gone"}')! >= 1);
    assert.ok(metrics.has('process_cpu_user_seconds_total') && metrics.has('nodejs_heap_size_used_bytes'), 'process metrics');
    // Bounded labels: no path, name or digest ever becomes one.
    for (const name of metrics.keys()) assert.not.match(name, /\/|sha256|team/, name);
  } finally {
    await wharf.cleanup();
    await distribution.stop();
  }
});

test('metrics on an address of their own: served there without credentials, not on the registry listeners', async () => {
  const dir = await tempDir();
  const server = await startServer(validateConfig({
    dataDir: `${dir}/data`, certsDir: `${dir}/certs`, listeners: [{ address: '127.0.0.1', port: 0 }], metrics: { address: '127.0.0.1', port: 0 },
    repositories: { 'docker-local': { type: 'local' } }, log: { access: false }, auth: { enabled: true },
  }, { baseDir: dir }));
  try {
    const registry = server.urls[0]!;
    assert.is((await fetch(`${registry}/metrics`)).status, 404, 'not on the registry listener');
    assert.ok(server.metricsUrl);
    assert.is((await fetch(`${registry}/v2/`)).status, 401);
    const metrics = await scrape(`${server.metricsUrl}/metrics`);
    assert.ok(metrics.get('wharf_http_requests_total{route="metrics",method="GET",status="404"}')! >= 1);
    assert.is((await fetch(`${server.metricsUrl}/readyz`)).status, 200);
  } finally {
    await server.close();
  }
});

test('a metrics listener beyond loopback is named in one warning at start; on loopback, none', async () => {
  for (const address of ['0.0.0.0', '127.0.0.1']) {
    const dir = await tempDir();
    const lines: string[] = [];
    const server = await startServer(validateConfig({
      dataDir: `${dir}/data`, certsDir: `${dir}/certs`, listeners: [{ address: '127.0.0.1', port: 0 }], metrics: { address, port: 0 },
      repositories: { 'docker-local': { type: 'local' } }, log: { access: false }, auth: { enabled: true },
    }, { baseDir: dir }), { logger: createLogger({ format: 'text', write: (line) => lines.push(line) }) });
    await server.close();
    const warnings = lines.filter((line) => line.includes('metrics listener'));
    if (address === '127.0.0.1') {
      assert.equal(warnings, []);
    } else {
      assert.is(warnings.length, 1, lines.join(''));
      assert.match(warnings[0]!, /warning: the metrics listener 0\.0\.0\.0:[1-9]\d* is beyond loopback and asks no credentials/);
    }
  }
});

test.run();
