import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nginxTempPaths } from '../../bench/servers.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { freePort, waitForPort } from '../helpers/ports.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// nginx and Apache, started here with the configuration `wharf proxy-config` wrote, in front of a
// plain-HTTP Wharf: TLS at the proxy with Wharf's certificate, skopeo pushing and pulling through
// it. The only change to a generated file is its ports (free ones instead of 443/5001).

let dir: string;
let wharf: TestServer;
let proxy: ChildProcess | null = null;
let certDir: string;

test.before(async () => {
  dir = await tempDir('wharf-proxy-live-');
  // The proxies are trusted, as an operator would set it: Location headers name the proxy's origin.
  wharf = await startWharf({ trustedProxies: ['127.0.0.1'] });
  const wharfPort = Number(wharf.url.split(':')[2]);
  const configFile = join(dir, 'wharf.yaml');
  await writeFile(configFile, `certsDir: ${join(dir, 'certs')}\nbaseDomain: proxied.test\nlisteners:\n  - { address: 127.0.0.1, port: ${wharfPort} }\nrepositories:\n  docker-local: { type: local }\n`);
  assert.is((await runCli(['certs', '--config', configFile])).code, 0);
  certDir = await tempDir('wharf-ca-');
  await copyFile(join(dir, 'certs', 'ca.crt'), join(certDir, 'ca.crt'));
  for (const server of ['nginx', 'apache']) {
    for (const method of ['subdomain', 'port', 'path']) {
      assert.is((await runCli(['proxy-config', server, '--method', method, '--out', join(dir, server, method), '--config', configFile])).code, 0);
    }
  }
});
test.after(async () => {
  await stopProxy();
  await wharf.cleanup();
});

async function stopProxy(): Promise<void> {
  if (!proxy || proxy.exitCode !== null) return;
  const exited = new Promise((resolve) => proxy!.once('exit', resolve));
  proxy.kill('SIGTERM');
  await exited;
  proxy = null;
}

/** Starts nginx with a generated site, its TLS port replaced by a free one; returns that port. */
async function startNginx(method: string, generatedPort: number): Promise<number> {
  await stopProxy();
  const port = await freePort();
  const site = (await readFile(join(dir, 'nginx', method, 'wharf.conf'), 'utf8'))
    .replaceAll(`listen ${generatedPort} ssl`, `listen 127.0.0.1:${port} ssl`)
    .replaceAll(`$host:${generatedPort}`, `$host:${port}`)
    .replace('listen 80;', `listen 127.0.0.1:${await freePort()};`);
  await writeFile(join(dir, 'nginx-live.conf'), site);
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, `daemon off;\npid ${dir}/nginx.pid;\nerror_log stderr error;\nevents {}\nhttp {\n  ${nginxTempPaths(dir)}\n  access_log off;\n  include ${join(dir, 'nginx-live.conf')};\n}\n`);
  proxy = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  return port;
}

/** Starts Apache in the foreground with a generated site, its TLS port replaced by a free one. */
async function startApache(method: string, generatedPort: number): Promise<number> {
  await stopProxy();
  const port = await freePort();
  const site = (await readFile(join(dir, 'apache', method, 'wharf.conf'), 'utf8'))
    .replaceAll(`Listen ${generatedPort}`, `Listen 127.0.0.1:${port}`)
    .replaceAll(`<VirtualHost *:${generatedPort}>`, `<VirtualHost *:${port}>`)
    .replaceAll(`X-Forwarded-Port "${generatedPort}"`, `X-Forwarded-Port "${port}"`);
  await writeFile(join(dir, 'apache-live.conf'), site);
  const modules = ['mpm_event', 'authz_core', 'ssl', 'socache_shmcb', 'proxy', 'proxy_http', 'rewrite', 'headers'];
  const conf = join(dir, 'apache.conf');
  await writeFile(conf, [
    `ServerRoot ${dir}`, `PidFile ${dir}/apache.pid`, 'ErrorLog /dev/stderr', 'LogLevel error', `DefaultRuntimeDir ${dir}`, 'ServerName localhost',
    'User www-data', 'Group www-data',
    ...modules.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`),
    `Include ${join(dir, 'apache-live.conf')}`, '',
  ].join('\n'));
  proxy = spawn('apache2', ['-f', conf, '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  return port;
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
  const direct = await fetch(`${wharf.url}/v2/docker-local/${image.replace(':', '/manifests/')}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.is(direct.headers.get('docker-content-digest'), content.digest, 'it landed in docker-local');
}

test('nginx, port method: skopeo pushes and pulls a multi-layer image through it', async () => {
  const port = await startNginx('port', 5001);
  await pushAndPull(`127.0.0.1:${port}`, 'team/via-port:1.0');
});

test('nginx, path method: skopeo pushes and pulls through it', async () => {
  const port = await startNginx('path', 443);
  await pushAndPull(`127.0.0.1:${port}/docker-local`, 'team/via-path:2.0');
});

test('nginx, subdomain method: skopeo pushes and pulls through docker-local.<baseDomain>', async () => {
  const port = await startNginx('subdomain', 443);
  await withHostEntries(['docker-local.proxied.test'], () => pushAndPull(`docker-local.proxied.test:${port}`, 'team/via-subdomain:1.0'));
});

test('Apache, subdomain method: skopeo pushes and pulls through docker-local.<baseDomain>', async () => {
  const port = await startApache('subdomain', 443);
  await withHostEntries(['docker-local.proxied.test'], () => pushAndPull(`docker-local.proxied.test:${port}`, 'team/via-apache-subdomain:1.0'));
});

test('Apache, port method: skopeo pushes and pulls a multi-layer image through it', async () => {
  const port = await startApache('port', 5001);
  await pushAndPull(`127.0.0.1:${port}`, 'team/via-apache-port:1.0');
});

test('Apache, path method: skopeo pushes and pulls through it', async () => {
  const port = await startApache('path', 443);
  await pushAndPull(`127.0.0.1:${port}/docker-local`, 'team/via-apache-path:1.0');
});

test.run();
