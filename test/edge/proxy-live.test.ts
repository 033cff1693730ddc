import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { freePort } from '../helpers/ports.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, tempDir } from '../helpers/server.js';
import { stockApache, stockNginx, type PortMap, type StockProxy } from '../helpers/stock-proxies.js';

// nginx and Apache as Debian installs them, each with the site `wharf proxy-config` wrote dropped
// in as its header says, in front of a Wharf running the very configuration the sites were
// generated from (baseDomain included): TLS at the proxy with Wharf's certificate, skopeo pushing
// and pulling through it. The only change to the stock layout and the site is their listen ports
// (free ones instead of 80, 443 and 5001), so runs on one machine do not collide. The config has
// proxy.offload on: Wharf authorizes blob GETs and the proxy sends the files (X-Accel-Redirect,
// X-Sendfile), which Wharf's access log shows as blob GETs of 0 bytes it sent itself.

const run = promisify(execFile);

let dir: string;
let wharf: RunningServer;
let wharfUrl: string;
let certDir: string;
let proxy: StockProxy | null = null;
const baseDomain = 'proxied.test';
/** Wharf's access log (JSON lines). */
const accessLog: { method: string; url: string; status: number; bytesOut: number }[] = [];

test.before(async () => {
  dir = await tempDir('wharf-proxy-live-');
  await chmod(dir, 0o755);
  // The proxies' worker user (www-data) reads the blob files: as an operator would set it up, the
  // data directory (Wharf keeps it 0750) belongs to that user's group.
  await mkdir(join(dir, 'data'), { mode: 0o750 });
  const wwwData = /^www-data:[^:]*:(\d+):/m.exec(await readFile('/etc/group', 'utf8'));
  assert.ok(wwwData, 'the www-data group exists (Debian\'s nginx and Apache run as it)');
  await chown(join(dir, 'data'), process.getuid!(), Number(wwwData[1]));
  const configFile = join(dir, 'wharf.yaml');
  await writeFile(configFile, [
    `dataDir: ${join(dir, 'data')}`, `certsDir: ${join(dir, 'certs')}`, `baseDomain: ${baseDomain}`,
    // The proxies are trusted, as an operator would set it: Location headers name the proxy's origin.
    'trustedProxies: [127.0.0.1]',
    `listeners:\n  - { address: 127.0.0.1, port: ${await freePort()} }`,
    'repositories:\n  docker-local: { type: local }', 'log: { access: true, format: json }', 'auth: { enabled: false }',
    'proxy: { offload: true }', '',
  ].join('\n'));
  for (const server of ['nginx', 'apache']) {
    for (const method of ['subdomain', 'port', 'path']) {
      const result = await runCli(['proxy-config', server, '--method', method, '--out', join(dir, server, method), '--config', configFile]);
      assert.is(result.code, 0, result.stderr);
    }
  }
  wharf = await startServer(loadConfig(configFile, {}, {}), {
    writeLog: (text) => text.trim().split('\n').forEach((line) => accessLog.push(JSON.parse(line) as (typeof accessLog)[number])),
  });
  wharfUrl = wharf.urls[0]!;
  certDir = await tempDir('wharf-ca-');
  await copyFile(join(dir, 'certs', 'ca.crt'), join(certDir, 'ca.crt'));
});
test.after(async () => {
  await proxy?.stop();
  await wharf.close();
});

/** Starts the stock server with a generated site, every listen port moved to a free one; returns where 443 (or 5001) went. */
async function startProxy(server: 'nginx' | 'apache', method: string, sitePort: number): Promise<number> {
  await proxy?.stop();
  const ports: PortMap = { 80: await freePort(), [sitePort]: await freePort() };
  const snippet = await readFile(join(dir, server, method, 'wharf.conf'), 'utf8');
  const root = await tempDir(`wharf-${server}-`);
  proxy = server === 'nginx' ? await stockNginx(root, snippet, ports) : await stockApache(root, snippet, ports);
  await proxy.start();
  return ports[sitePort]!;
}

/** Blob GETs Wharf answered for `layer` without sending a byte itself: the proxy sent the file. */
function offloaded(layer: string): number {
  return accessLog.filter((entry) => entry.method === 'GET' && entry.url.endsWith(`/blobs/${layer}`) && entry.status === 200 && entry.bytesOut === 0).length;
}

async function pushAndPull(registry: string, image: string): Promise<void> {
  const content = makeImage({ layers: 3, layerBytes: 300_000 });
  const layout = await tempDir('wharf-oci-');
  await writeOciLayout(layout, 'v1', [content]);
  await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://${registry}/${image}`]);
  const out = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-cert-dir', certDir, `docker://${registry}/${image}`, `oci:${out}:x`]);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.is(index.manifests[0]!.digest, content.digest);
  const direct = await fetch(`${wharfUrl}/v2/docker-local/${image.replace(':', '/manifests/')}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.is(direct.headers.get('docker-content-digest'), content.digest, 'it landed in docker-local');
  for (const layer of content.layers) assert.is(offloaded(layer.digest), 1, `the proxy sent ${layer.digest}`);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A GET through the proxy with curl: status, headers (lowercased) and body. */
async function curl(url: string, headers: string[] = []): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const dump = join(await tempDir('wharf-curl-'), 'headers');
  const { stdout } = await run('curl', ['-s', '--cacert', join(certDir, 'ca.crt'), '-D', dump, ...headers.flatMap((h) => ['-H', h]), url], { encoding: 'buffer', maxBuffer: 64 << 20 });
  const lines = (await readFile(dump, 'utf8')).trim().split(/\r?\n/);
  const fields = Object.fromEntries(lines.slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(lines[0]!.split(' ')[1]), headers: fields, body: stdout };
}

const subdomain = `docker-local.${baseDomain}`;

for (const server of ['nginx', 'apache'] as const) {
  test(`${server}, subdomain method: skopeo pushes and pulls through docker-local.<baseDomain>`, async () => {
    const port = await startProxy(server, 'subdomain', 443);
    await withHostEntries([subdomain], () => pushAndPull(`${subdomain}:${port}`, `team/${server}-subdomain:1.0`));
  });

  test(`${server}, port method: skopeo pushes and pulls a multi-layer image through it`, async () => {
    const port = await startProxy(server, 'port', 5001);
    await pushAndPull(`127.0.0.1:${port}`, `team/${server}-port:1.0`);
  });

  test(`${server}, offload: the proxy sends the file with Wharf's headers, and ranges of it`, async () => {
    const port = await startProxy(server, 'port', 5001);
    const content = makeImage({ layers: 1, layerBytes: 2_000_000 });
    const layer = content.layers[0]!;
    const layout = await tempDir('wharf-oci-');
    await writeOciLayout(layout, 'v1', [content]);
    await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://127.0.0.1:${port}/team/${server}-offload:1.0`]);
    const url = `https://127.0.0.1:${port}/v2/team/${server}-offload/blobs/${layer.digest}`;
    const whole = await curl(url);
    assert.is(whole.status, 200);
    assert.is(sha256(whole.body), sha256(layer.bytes));
    assert.is(whole.headers['content-length'], String(layer.bytes.length));
    assert.is(whole.headers['content-type'], 'application/octet-stream');
    assert.is(whole.headers['docker-content-digest'], layer.digest);
    assert.is(whole.headers['etag'], `"${layer.digest}"`);
    const part = await curl(url, ['Range: bytes=1000-1999999']);
    assert.is(part.status, 206);
    assert.is(part.headers['content-range'], `bytes 1000-1999999/${layer.bytes.length}`);
    assert.is(sha256(part.body), sha256(layer.bytes.subarray(1000, 2_000_000)));
    assert.is(part.headers['docker-content-digest'], layer.digest);
    assert.is(offloaded(layer.digest), 2, 'both went out from the proxy');
    // Wharf still authorizes: an unknown blob is Wharf's own 404, never a file lookup by the proxy.
    const missing = await curl(url.replace(layer.digest.slice(-8), '00000000'));
    assert.is(missing.status, 404);
    assert.match(missing.body.toString(), 'BLOB_UNKNOWN');
  });

  test(`${server}, path method: skopeo pushes and pulls through it`, async () => {
    const port = await startProxy(server, 'path', 443);
    await withHostEntries([baseDomain], () => pushAndPull(`${baseDomain}:${port}/docker-local`, `team/${server}-path:2.0`));
  });
}

test.run();
