import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nginxTempPaths } from '../../bench/servers.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// nginx, started here with the configuration `wharf proxy-config nginx` wrote, in front of a
// plain-HTTP Wharf: TLS at nginx with Wharf's certificate, skopeo pushing and pulling through it.
// The only change to the generated file is the listen port (a free one instead of 443/5001).

let dir: string;
let wharf: TestServer;
let nginx: ChildProcess | null = null;
let certDir: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test.before(async () => {
  dir = await tempDir('wharf-proxy-live-');
  wharf = await startWharf();
  const wharfPort = Number(wharf.url.split(':')[2]);
  const configFile = join(dir, 'wharf.yaml');
  await writeFile(configFile, `certsDir: ${join(dir, 'certs')}\nlisteners:\n  - { address: 127.0.0.1, port: ${wharfPort} }\nrepositories:\n  docker-local: { type: local }\n`);
  assert.is((await runCli(['certs', '--config', configFile])).code, 0);
  certDir = await tempDir('wharf-ca-');
  await copyFile(join(dir, 'certs', 'ca.crt'), join(certDir, 'ca.crt'));
  for (const method of ['port', 'path']) {
    assert.is((await runCli(['proxy-config', 'nginx', '--method', method, '--out', join(dir, method), '--config', configFile])).code, 0);
  }
});
test.after(async () => {
  await stopNginx();
  await wharf.cleanup();
});

async function stopNginx(): Promise<void> {
  if (!nginx || nginx.exitCode !== null) return;
  const exited = new Promise((resolve) => nginx!.once('exit', resolve));
  nginx.kill('SIGTERM');
  await exited;
  nginx = null;
}

/** Starts nginx with a generated site, its TLS port replaced by a free one; returns that port. */
async function startNginx(method: string, generatedPort: number): Promise<number> {
  await stopNginx();
  const port = await freePort();
  const site = (await readFile(join(dir, method, 'wharf.conf'), 'utf8'))
    .replaceAll(`listen ${generatedPort} ssl`, `listen 127.0.0.1:${port} ssl`)
    .replaceAll(`$host:${generatedPort}`, `$host:${port}`)
    .replace('listen 80;', `listen 127.0.0.1:${await freePort()};`);
  await writeFile(join(dir, `${method}-live.conf`), site);
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, `daemon off;\npid ${dir}/nginx.pid;\nerror_log stderr error;\nevents {}\nhttp {\n  ${nginxTempPaths(dir)}\n  access_log off;\n  include ${join(dir, `${method}-live.conf`)};\n}\n`);
  nginx = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`).catch((error: Error & { cause?: { code?: string } }) => {
        if (error.cause?.code === 'ECONNREFUSED') throw error;
      });
      return port;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('nginx did not start');
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

test('port method: skopeo pushes and pulls a multi-layer image through nginx', async () => {
  const port = await startNginx('port', 5001);
  await pushAndPull(`127.0.0.1:${port}`, 'team/via-port:1.0');
});

test('path method: skopeo pushes and pulls through nginx with the repository key in the path', async () => {
  const port = await startNginx('path', 443);
  const content = makeImage({ layers: 2 });
  const layout = await tempDir('wharf-oci-');
  await writeOciLayout(layout, 'v1', [content]);
  await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://127.0.0.1:${port}/docker-local/team/via-path:2.0`]);
  const inspected = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://127.0.0.1:${port}/docker-local/team/via-path:2.0`])) as { Digest: string };
  assert.is(inspected.Digest, content.digest);
});

test.run();
