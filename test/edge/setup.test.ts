import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli, startWharf, tempDir } from '../helpers/server.js';

// "Set Me Up": the commands for one repository, by the access method the config gives it.

async function setup(config: string, key: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = await tempDir('wharf-setup-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, config.replaceAll('DIR', dir));
  return runCli(['setup', ...(key ? [key] : []), '--config', file]);
}

const repositories = 'repositories:\n  docker-local: { type: local }\n  docker-hub: { type: remote, url: "https://registry-1.docker.io" }\n';

test('repository path on a plain listener: push and pull under <host>/<key>/', async () => {
  const result = await setup(`listeners:\n  - { address: 127.0.0.1, port: 5000 }\n${repositories}`, 'docker-local');
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, 'by repository path');
  assert.match(result.stdout, 'docker push 127.0.0.1:5000/docker-local/team/app:1.0');
  assert.match(result.stdout, 'podman pull --tls-verify=false 127.0.0.1:5000/docker-local/team/app:1.0');
  assert.match(result.stdout, '"auths": { "127.0.0.1:5000"');
});

test('port binding and subdomain over self-signed TLS, with the CA-trust step; remote repositories are pull-only', async () => {
  const config = `certsDir: DIR/certs\nbaseDomain: registry.example.com\nlisteners:\n  - { address: 0.0.0.0, port: 443, tls: { mode: self-signed } }\n  - { address: 0.0.0.0, port: 5001, tls: { mode: self-signed }, repository: docker-local }\n${repositories}`;
  const bound = await setup(config, 'docker-local');
  assert.match(bound.stdout, 'by port binding');
  assert.match(bound.stdout, 'docker push registry.example.com:5001/team/app:1.0');
  assert.match(bound.stdout, '/etc/docker/certs.d/registry.example.com:5001/ca.crt');
  const hub = await setup(config, 'docker-hub');
  assert.match(hub.stdout, 'by subdomain');
  assert.match(hub.stdout, 'docker pull docker-hub.registry.example.com/team/app:1.0');
  assert.not.match(hub.stdout, 'docker push');
  assert.match(hub.stdout, 'pull only');
  const unknown = await setup(config, 'nope');
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, 'configured: docker-local, docker-hub');
});

test("a repository no listener reaches says so (CLI, /api/setup, /api/repositories), never naming another key's port binding", async () => {
  const bound = `listeners:\n  - { address: 127.0.0.1, port: 5001, repository: docker-local }\nrepositories:\n  docker-local: { type: local }\n  other: { type: local }\n`;
  const text = await setup(bound, 'other');
  assert.is(text.code, 0, text.stderr);
  assert.is(text.stdout, 'Set Me Up: other (local repository): no listener reaches it. Add a port binding (a listener with repository: other), or a listener with neither repository nor mirrors, which serves every repository by path.\n');
  const list = await setup(bound, '');
  assert.match(list.stdout, /other +local +no listener reaches it/);
  assert.not.match(list.stdout, '5001/other');
  const log: string[] = [];
  const wharf = await startWharf({
    repositories: { 'docker-local': { type: 'local' }, other: { type: 'local' }, hub: { type: 'remote', url: 'https://hub.example' }, all: { type: 'virtual', repositories: ['hub'] } },
    listeners: [{ address: '127.0.0.1', port: 0, repository: 'docker-local' }, { address: '127.0.0.1', port: 0, repository: 'all' }],
    log: (line) => log.push(line),
  });
  try {
    // Start-up names it; a member of a virtual repository that is reached is not named.
    assert.equal(log.filter((line) => line.includes('no listener reaches')).map((line) => line.replace(/^\S+ /, '')),
      ['warn warning: no listener reaches other: give each a port binding (listeners[].repository) or add a listener that serves by path']);
    assert.is(await (await fetch(`${wharf.url}/api/setup/other`)).text(), text.stdout);
    const listed = (await (await fetch(`${wharf.url}/api/repositories`)).json()) as { key: string; url: string | null; access: unknown[] }[];
    assert.equal(listed.find((repository) => repository.key === 'other'), { key: 'other', type: 'LOCAL', packageType: 'Docker', description: '', url: null, access: [] });
  } finally {
    await wharf.cleanup();
  }
});

test('the same text is served at /api/setup/<key>', async () => {
  const wharf = await startWharf();
  try {
    const response = await fetch(`${wharf.url}/api/setup/docker-local`);
    assert.is(response.status, 200);
    assert.match(await response.text(), `docker push ${wharf.url.replace('http://', '')}/docker-local/team/app:1.0`);
    const unknown = await fetch(`${wharf.url}/api/setup/nope`);
    assert.is(unknown.status, 404);
  } finally {
    await wharf.cleanup();
  }
});

test.run();
