import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// Wharf as its own TLS endpoint: a self-signed CA it generates, HTTP/2 and HTTP/1.1 by ALPN, and
// the three access methods (port binding, subdomain, path) reaching the same repository. Real
// clients verify the chain: no --tls-verify=false anywhere here.

const run = promisify(execFile);
let wharf: TestServer;
let certDir: string;
let main: string;
let bound: string;
const baseDomain = 'registry.test';

test.before(async () => {
  wharf = await startWharf({
    baseDomain,
    listeners: [
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } },
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' }, repository: 'docker-local' },
    ],
  });
  [main, bound] = wharf.urls.map((url) => url.replace('https://', '')) as [string, string];
  // skopeo's --cert-dir reads every *.crt in it as a CA: give it the CA alone.
  certDir = await tempDir('wharf-ca-');
  await copyFile(wharf.caPath!, join(certDir, 'ca.crt'));
});
test.after(() => wharf.cleanup());

async function curl(args: string[]): Promise<string> {
  return (await run('curl', ['-s', '--cacert', wharf.caPath!, ...args])).stdout;
}

test('the server certificate names localhost, the listener IPs and *.baseDomain; keys are private', async () => {
  const certsDir = join(wharf.dataDir, 'certs');
  const cert = new X509Certificate(await readFile(join(certsDir, 'server.crt')));
  for (const name of ['DNS:localhost', `DNS:*.${baseDomain}`, 'IP Address:127.0.0.1']) assert.match(cert.subjectAltName ?? '', name);
  assert.ok(cert.verify(new X509Certificate(await readFile(wharf.caPath!)).publicKey), 'signed by the CA');
  for (const key of ['ca.key', 'server.key']) assert.is((await stat(join(certsDir, key))).mode & 0o777, 0o600);
});

test('skopeo verifies the self-signed chain on an IP address and on localhost', async () => {
  const image = makeImage();
  const layout = await tempDir('wharf-oci-');
  await writeOciLayout(layout, 'v1', [image]);
  await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://${main}/docker-local/team/app:1.0`]);
  for (const host of [main, main.replace('127.0.0.1', 'localhost')]) {
    const inspected = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://${host}/docker-local/team/app:1.0`])) as { Digest: string };
    assert.is(inspected.Digest, image.digest);
  }
  let refused = false;
  await skopeo(['inspect', `docker://${main}/docker-local/team/app:1.0`]).catch(() => { refused = true; });
  assert.ok(refused, 'without the CA the chain is not trusted');
});

test('pushed through a port binding, pulled through the subdomain and the path: same digest', async () => {
  const image = makeImage({ layers: 3 });
  const layout = await tempDir('wharf-oci-');
  await writeOciLayout(layout, 'v1', [image]);
  await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://${bound}/team/bound:2.0`]);
  const viaPath = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://${main}/docker-local/team/bound:2.0`])) as { Digest: string };
  assert.is(viaPath.Digest, image.digest);
  const port = main.split(':')[1];
  const host = `docker-local.${baseDomain}`;
  const headers = await curl(['-D', '-', '-o', '/dev/null', '--resolve', `${host}:${port}:127.0.0.1`,
    '-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `https://${host}:${port}/v2/team/bound/manifests/2.0`]);
  assert.match(headers, new RegExp(`docker-content-digest: ${image.digest}`, 'i'));
  const out = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-cert-dir', certDir, `docker://${bound}/team/bound:2.0`, `oci:${out}:x`]);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.is(index.manifests[0]!.digest, image.digest);
});

test('skopeo verifies the chain on a subdomain and reaches that repository through it', async () => {
  const image = makeImage();
  const layout = await tempDir('wharf-oci-');
  await writeOciLayout(layout, 'v1', [image]);
  const port = main.split(':')[1];
  await withHostEntries([`docker-local.${baseDomain}`], async () => {
    await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://docker-local.${baseDomain}:${port}/team/subdomain:1`]);
    const inspected = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://docker-local.${baseDomain}:${port}/team/subdomain:1`])) as { Digest: string };
    assert.is(inspected.Digest, image.digest);
  });
  const viaPath = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://${main}/docker-local/team/subdomain:1`])) as { Digest: string };
  assert.is(viaPath.Digest, image.digest, 'the same image by path');
});

test('a host name below baseDomain that names no repository says which names are served', async () => {
  const port = main.split(':')[1];
  const body = JSON.parse(await curl(['--resolve', `nope.${baseDomain}:${port}:127.0.0.1`, `https://nope.${baseDomain}:${port}/v2/team/app/tags/list`])) as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'NAME_UNKNOWN');
  assert.match(body.errors[0]!.message, `docker-local.${baseDomain}`);
});

test('a redirectToHttps listener sends every request to the TLS listener, keeping path and query', async () => {
  const redirecting = await startWharf({
    listeners: [
      { address: '127.0.0.1', port: 0, redirectToHttps: true },
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } },
    ],
  });
  try {
    const response = await fetch(`${redirecting.urls[0]}/v2/docker-local/team/app/tags/list?n=1`, { redirect: 'manual' });
    assert.is(response.status, 308);
    assert.is(response.headers.get('location'), `${redirecting.urls[1]}/v2/docker-local/team/app/tags/list?n=1`);
  } finally {
    await redirecting.cleanup();
  }
});

test('a redirectToHttps listener skips a TLS port binding: it sends requests to the TLS listener that serves by path', async () => {
  const redirecting = await startWharf({
    repositories: { 'docker-local': { type: 'local' }, other: { type: 'local' } },
    listeners: [
      { address: '127.0.0.1', port: 0, redirectToHttps: true },
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' }, repository: 'docker-local' },
      { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } },
    ],
  });
  try {
    const response = await fetch(`${redirecting.urls[0]}/v2/other/app/blobs/uploads/`, { method: 'POST', redirect: 'manual' });
    assert.is(response.status, 308);
    assert.is(response.headers.get('location'), `${redirecting.urls[2]}/v2/other/app/blobs/uploads/`);
  } finally {
    await redirecting.cleanup();
  }
});

test('TLS listeners negotiate HTTP/2 and HTTP/1.1 by ALPN', async () => {
  assert.is((await curl(['-o', '/dev/null', '-w', '%{http_version}', '--http2', `https://${main}/v2/`])).trim(), '2');
  assert.is((await curl(['-o', '/dev/null', '-w', '%{http_version}', '--http1.1', `https://${main}/v2/`])).trim(), '1.1');
});

test('a restart keeps the CA and the certificate', async () => {
  const before = await readFile(join(wharf.dataDir, 'certs', 'server.crt'), 'utf8');
  const again = await startWharf({ dataDir: wharf.dataDir, baseDomain, listeners: [{ address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }] });
  try {
    assert.is(await readFile(join(wharf.dataDir, 'certs', 'server.crt'), 'utf8'), before);
    assert.is((await curl(['-o', '/dev/null', '-w', '%{http_code}', `${again.url}/v2/`])).trim(), '200');
  } finally {
    await again.stop();
  }
});

test('wharf certs prints where the CA is and how docker, podman and the system trust it; --regenerate reissues', async () => {
  const dir = await tempDir('wharf-certs-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, `certsDir: ${join(dir, 'certs')}\nlisteners:\n  - { address: 127.0.0.1, port: 5443, tls: { mode: self-signed } }\nrepositories:\n  docker-local: { type: local }\n`);
  const first = await runCli(['certs', '--config', file]);
  assert.is(first.code, 0, first.stderr);
  const ca = join(dir, 'certs', 'ca.crt');
  assert.match(first.stdout, `Wharf's CA certificate: ${ca}`);
  assert.match(first.stdout, `/etc/docker/certs.d/127.0.0.1:5443/ca.crt`);
  assert.match(first.stdout, '/etc/containers/certs.d/127.0.0.1:5443/ca.crt');
  assert.match(first.stdout, 'update-ca-certificates');
  const server = await readFile(join(dir, 'certs', 'server.crt'), 'utf8');
  const caBefore = await readFile(ca, 'utf8');
  assert.is((await runCli(['certs', '--config', file, '--regenerate'])).code, 0);
  assert.is.not(await readFile(join(dir, 'certs', 'server.crt'), 'utf8'), server, 'a new server certificate');
  assert.is(await readFile(ca, 'utf8'), caBefore, 'the same CA');
});

test.run();
