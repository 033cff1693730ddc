import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// One mirror endpoint for several upstreams, chosen by containerd's ns parameter, against real
// upstreams (two CNCF Distributions, each behind a counting pass-through); and the mirror
// settings Set Me Up prints, parsed as the files they are.

// What containerd 1.7 sends when it resolves and fetches through a mirror.
const containerdAccept = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, '
  + 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*';
const containerd = { Accept: containerdAccept, 'User-Agent': 'containerd/v1.7.24' };

let hub: Distribution;
let ghcr: Distribution;
let hubProxy: CountingProxy;
let ghcrProxy: CountingProxy;
let wharf: TestServer;
let mirror: string;
const alpine = makeImage();
const tool = makeImage();

test.before(async () => {
  [hub, ghcr] = await Promise.all([startDistribution(), startDistribution()]);
  [hubProxy, ghcrProxy] = await Promise.all([startCountingProxy(hub.url), startCountingProxy(ghcr.url)]);
  await seedImage(hub.url, 'library/alpine', alpine, 'latest');
  await seedImage(ghcr.url, 'owner/tool', tool, '1.0');
  wharf = await startWharf({
    repositories: { 'docker-hub': { type: 'remote', url: hubProxy.url }, 'ghcr-remote': { type: 'remote', url: ghcrProxy.url } },
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, mirrors: { 'docker.io': 'docker-hub', 'ghcr.io': 'ghcr-remote' } }],
  });
  mirror = wharf.urls[1]!;
});
test.after(async () => {
  await wharf.cleanup();
  await Promise.all([hubProxy.stop(), ghcrProxy.stop()]);
  await Promise.all([hub.stop(), ghcr.stop()]);
});

test('containerd resolves and fetches docker.io and ghcr.io images through one endpoint, each from its own upstream', async () => {
  hubProxy.reset();
  ghcrProxy.reset();
  const head = await fetch(`${mirror}/v2/library/alpine/manifests/latest?ns=docker.io`, { method: 'HEAD', headers: containerd });
  assert.is(head.status, 200);
  assert.is(head.headers.get('docker-content-digest'), alpine.digest);
  const manifest = await fetch(`${mirror}/v2/library/alpine/manifests/${alpine.digest}?ns=docker.io`, { headers: containerd });
  assert.is(Buffer.from(await manifest.arrayBuffer()).equals(alpine.manifest), true);
  const layer = alpine.layers[0]!;
  const blob = await fetch(`${mirror}/v2/library/alpine/blobs/${layer.digest}?ns=docker.io`, { headers: { 'User-Agent': 'containerd/v1.7.24' } });
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(layer.bytes));
  const ranged = await fetch(`${mirror}/v2/library/alpine/blobs/${layer.digest}?ns=docker.io`, { headers: { Range: 'bytes=10-' } });
  assert.is(ranged.status, 206);

  const other = await fetch(`${mirror}/v2/owner/tool/manifests/1.0?ns=ghcr.io`, { headers: containerd });
  assert.is(other.status, 200);
  assert.is(other.headers.get('docker-content-digest'), tool.digest);
  assert.is(ghcrProxy.counts['GET manifest'], 1, 'ghcr.io came from the ghcr upstream');
  assert.is(hubProxy.counts['GET manifest'] ?? 0, 1, 'and docker.io from the hub upstream only');
  // Docker's registry-mirrors send no ns: that is docker.io.
  const docker = await fetch(`${mirror}/v2/library/alpine/manifests/latest`, { headers: containerd });
  assert.is(docker.headers.get('docker-content-digest'), alpine.digest);
  // The same repository by path on the shared listener.
  assert.is((await fetch(`${wharf.url}/v2/ghcr-remote/owner/tool/manifests/1.0`, { headers: containerd })).headers.get('docker-content-digest'), tool.digest);
});

test('an ns the mirror does not map: 404 NAME_UNKNOWN, and not one connection to any upstream', async () => {
  const before = [hubProxy.connections(), ghcrProxy.connections()];
  for (const ns of ['quay.io', '127.0.0.1:9', 'evil.example%2Fx']) {
    const response = await fetch(`${mirror}/v2/library/alpine/manifests/latest?ns=${ns}`, { headers: containerd });
    assert.is(response.status, 404, ns);
    const error = ((await response.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    assert.is(error.code, 'NAME_UNKNOWN');
    assert.match(error.message, 'this mirror serves docker.io, ghcr.io');
  }
  assert.is((await fetch(`${mirror}/v2/?ns=quay.io`)).status, 200, '/v2/ answers as anywhere');
  assert.equal([hubProxy.connections(), ghcrProxy.connections()], before);
});

test('a mirror must map to remote (or virtual) repositories; and not beside a port binding', async () => {
  const dir = await tempDir('wharf-mirrors-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, 'listeners:\n  - { port: 5002, mirrors: { docker.io: docker-local } }\nrepositories:\n  docker-local: { type: local }\n  hub: { type: remote, url: "https://registry-1.docker.io" }\n');
  const result = await runCli(['setup', '--config', file]);
  assert.is(result.code, 2);
  assert.match(result.stderr, 'listeners[0].mirrors.docker.io: expected a remote or virtual repository, got "docker-local" (those configured: hub)');
});

/** The block of `text` after `title`, with its 4-space indentation removed. */
function block(text: string, title: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.includes(title)) + 1;
  const body: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('    ') && line !== '') break;
    body.push(line.slice(4));
  }
  return body.join('\n');
}

test('Set Me Up prints daemon.json, containerd hosts.toml and podman registries.conf that parse and point at the mirror', async () => {
  const dir = await tempDir('wharf-mirrors-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, [
    `certsDir: ${dir}/certs`,
    'baseDomain: registry.example.com',
    'listeners:',
    '  - { address: 127.0.0.1, port: 5000 }',
    '  - { address: 0.0.0.0, port: 5002, tls: { mode: self-signed }, mirrors: { docker.io: docker-hub, ghcr.io: ghcr-remote } }',
    'repositories:',
    '  docker-hub: { type: remote, url: "https://registry-1.docker.io" }',
    '  ghcr-remote: { type: remote, url: "https://ghcr.io" }',
    'auth: { enabled: false, unsafeAllowNetwork: true }', '',
  ].join('\n'));
  const hubText = (await runCli(['setup', 'docker-hub', '--config', file])).stdout;
  const daemon = JSON.parse(block(hubText, 'daemon.json')) as Record<string, string[]>;
  assert.equal(daemon, { 'registry-mirrors': ['https://registry.example.com:5002'] });
  const hosts = parseToml(block(hubText, '/etc/containerd/certs.d/docker.io/hosts.toml')) as { server: string; host: Record<string, { capabilities: string[]; ca?: string }> };
  assert.is(hosts.server, 'https://registry-1.docker.io');
  assert.equal(hosts.host['https://registry.example.com:5002']!.capabilities, ['pull', 'resolve']);
  assert.is(hosts.host['https://registry.example.com:5002']!.ca, '/etc/containerd/certs.d/docker.io/wharf-ca.crt');
  const podman = parseToml(block(hubText, '/etc/containers/registries.conf')) as { registry: { prefix: string; location: string; mirror: { location: string; insecure?: boolean }[] }[] };
  assert.is(podman.registry[0]!.prefix, 'docker.io');
  assert.is(podman.registry[0]!.mirror[0]!.location, '127.0.0.1:5000/docker-hub', 'podman sends no ns: it takes the repository path');
  assert.is(podman.registry[0]!.mirror[0]!.insecure, true);

  const ghcrText = (await runCli(['setup', 'ghcr-remote', '--config', file])).stdout;
  assert.not.match(ghcrText, 'daemon.json', 'Docker mirrors Docker Hub only');
  const ghcrHosts = parseToml(block(ghcrText, '/etc/containerd/certs.d/ghcr.io/hosts.toml')) as { server: string; host: Record<string, unknown> };
  assert.is(ghcrHosts.server, 'https://ghcr.io');
  assert.ok(ghcrHosts.host['https://registry.example.com:5002']);
  assert.match(ghcrText, 'No login needed', 'auth is off');
  assert.not.match(ghcrText, 'docker login');
});

test('Set Me Up on plain HTTP: podman gets --tls-verify=false; a TLS port binding is preferred over a plain one; login lines when auth is on', async () => {
  const dir = await tempDir('wharf-setup-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, [
    `certsDir: ${dir}/certs`,
    'listeners:',
    '  - { address: 127.0.0.1, port: 5000 }',
    '  - { address: 127.0.0.1, port: 5001, repository: docker-local }',
    '  - { address: 127.0.0.1, port: 5443, tls: { mode: self-signed }, repository: docker-local }',
    'repositories:',
    '  docker-local: { type: local }',
    '  other: { type: local }', '',
  ].join('\n'));
  const bound = (await runCli(['setup', 'docker-local', '--config', file])).stdout;
  assert.match(bound, 'docker push 127.0.0.1:5443/team/app:1.0', 'the TLS binding');
  assert.match(bound, 'docker login 127.0.0.1:5443', 'auth is on by default');
  assert.match(bound, '  podman push 127.0.0.1:5443/team/app:1.0\n');
  const plain = (await runCli(['setup', 'other', '--config', file])).stdout;
  assert.match(plain, 'podman login --tls-verify=false 127.0.0.1:5000');
  assert.match(plain, 'podman push --tls-verify=false 127.0.0.1:5000/other/team/app:1.0');
  assert.match(plain, 'podman pull --tls-verify=false 127.0.0.1:5000/other/team/app:1.0');
});

test.run();
