import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage, makeIndex, writeOciLayout, type Image } from '../helpers/images.js';
import { indexWithVariant, tagsOf } from '../helpers/manage.js';
import { pushImage, seedImage } from '../helpers/registry.js';
import { tempDir } from '../helpers/server.js';
import { skopeo } from '../helpers/skopeo.js';
import { remoteFixture } from '../helpers/upstream.js';

// Multi-arch images through every kind of repository: stored with their children when pushed by
// `docker manifest push`, buildx-style (children by digest, then the index by tag) or `skopeo
// copy --all`; pulled by platform (skopeo --override-arch) and by index-averse clients (an
// Accept without index types gets the linux/amd64 image) from local, remote and virtual
// repositories. The upstream is a real Distribution behind a counting pass-through.

const fixture = remoteFixture(test, (url) => ({
  'docker-local': { type: 'local', platformTags: true },
  'docker-remote': { type: 'remote', url },
  docker: { type: 'virtual', repositories: ['docker-local', 'docker-remote'], defaultDeploymentRepo: 'docker-local' },
}));

const host = () => new URL(fixture.wharf.url).host;
const base = () => fixture.wharf.url;

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

/** skopeo pulls `path` for a platform into a dir: layout; the digest of the manifest it wrote. */
async function pullPlatform(path: string, architecture: string, variant?: string): Promise<string> {
  const out = await tempDir('wharf-multiarch-pull-');
  await skopeo(['--override-os', 'linux', '--override-arch', architecture, ...(variant ? ['--override-variant', variant] : []), 'copy', '--src-tls-verify=false', `docker://${host()}/${path}`, `dir:${out}`]);
  return digestOf(await readFile(join(out, 'manifest.json')));
}

/** What a client that accepts no index types gets for a tag: the linux/amd64 image. */
async function indexAverse(path: string): Promise<string | null> {
  const response = await fetch(`${base()}/v2/${path}`, { headers: { Accept: OCI_MANIFEST } });
  await response.arrayBuffer();
  return response.status === 200 ? response.headers.get('docker-content-digest') : null;
}

async function indexOf(path: string): Promise<{ mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] }> {
  const response = await fetch(`${base()}/v2/${path}`, { headers: { Accept: [OCI_INDEX, DOCKER_MANIFEST_LIST].join(', ') } });
  assert.is(response.status, 200, path);
  return response.json() as Promise<{ mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] }>;
}

test('docker manifest create/push over two pushed images: an index (OCI, as docker 28 makes it over OCI images) with its children, platform tags, pulls by platform', async () => {
  const amd64 = makeImage({ architecture: 'amd64' });
  const arm64 = makeImage({ architecture: 'arm64' });
  await pushImage(base(), 'docker-local/team/dm', amd64, 'amd64');
  await pushImage(base(), 'docker-local/team/dm', arm64, 'arm64');
  const env = { ...process.env, DOCKER_CONFIG: await tempDir('wharf-docker-') };
  const list = `${host()}/docker-local/team/dm:v1`;
  const created = await run('docker', ['manifest', 'create', '--insecure', list, `${host()}/docker-local/team/dm:amd64`, `${host()}/docker-local/team/dm:arm64`], env);
  assert.is(created.code, 0, created.stderr);
  const pushed = await run('docker', ['manifest', 'push', '--insecure', list], env);
  assert.is(pushed.code, 0, pushed.stderr);
  const index = await indexOf('docker-local/team/dm/manifests/v1');
  assert.ok([OCI_INDEX, DOCKER_MANIFEST_LIST].includes(index.mediaType), index.mediaType);
  assert.equal(index.manifests.map((m) => [m.digest, m.platform.architecture]), [[amd64.digest, 'amd64'], [arm64.digest, 'arm64']]);
  assert.equal(await tagsOf(base(), 'docker-local/team/dm'), ['amd64', 'arm64', 'v1', 'v1-linux-amd64', 'v1-linux-arm64']);
  assert.is(await pullPlatform('docker-local/team/dm:v1', 'arm64'), arm64.digest);
  assert.is(await indexAverse('docker-local/team/dm/manifests/v1'), amd64.digest);
  const inspected = await run('docker', ['manifest', 'inspect', '--insecure', list], env);
  assert.is(inspected.code, 0, inspected.stderr);
  assert.match(inspected.stdout, arm64.digest);
});

test('skopeo copy --all through the virtual repository: stored with its children in the deployment repository, pulled by platform through both', async () => {
  const amd64 = makeImage({ architecture: 'amd64' });
  const arm64 = makeImage({ architecture: 'arm64' });
  const index = indexWithVariant([amd64, arm64]);
  const layout = await tempDir('wharf-multiarch-layout-');
  await writeOciLayout(layout, 'v1', [amd64, arm64], index);
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host()}/docker/team/all:v1`]);
  for (const path of ['docker-local/team/all', 'docker/team/all']) {
    assert.equal((await indexOf(`${path}/manifests/v1`)).manifests.map((m) => m.digest), [amd64.digest, arm64.digest]);
    assert.is(await pullPlatform(`${path}:v1`, 'arm64', 'v8'), arm64.digest);
    assert.is(await pullPlatform(`${path}:v1`, 'amd64'), amd64.digest);
    assert.is(await indexAverse(`${path}/manifests/v1`), amd64.digest);
  }
  assert.equal(await tagsOf(base(), 'docker-local/team/all'), ['v1', 'v1-linux-amd64', 'v1-linux-arm64-v8']);
});

async function seedMultiArch(name: string, tag: string): Promise<{ amd64: Image; arm64: Image; digest: string }> {
  const amd64 = makeImage({ architecture: 'amd64' });
  const arm64 = makeImage({ architecture: 'arm64' });
  for (const image of [amd64, arm64]) await seedImage(fixture.distribution.url, name, image, image.platform.architecture);
  const index = makeIndex([amd64, arm64]);
  const put = await fetch(`${fixture.distribution.url}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': OCI_INDEX } });
  assert.is(put.status, 201, await put.text());
  return { amd64, arm64, digest: index.digest };
}

test('an upstream index through the remote repository: pulled by platform, index-averse clients get amd64, the index is cached whole', async () => {
  const { amd64, arm64, digest } = await seedMultiArch('team/upstream', 'v1');
  assert.is(await pullPlatform('docker-remote/team/upstream:v1', 'arm64'), arm64.digest);
  assert.is(await indexAverse('docker-remote/team/upstream/manifests/v1'), amd64.digest);
  assert.is((await indexOf('docker-remote/team/upstream/manifests/v1')).manifests.length, 2);
  const response = await fetch(`${base()}/v2/docker-remote/team/upstream/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_INDEX } });
  assert.is(response.headers.get('docker-content-digest'), digest);
});

test('an upstream index through the virtual repository, for an image no local member has', async () => {
  const { amd64, arm64 } = await seedMultiArch('team/through', 'v2');
  assert.is(await pullPlatform('docker/team/through:v2', 'arm64'), arm64.digest);
  assert.is(await pullPlatform('docker/team/through:v2', 'amd64'), amd64.digest);
  assert.is(await indexAverse('docker/team/through/manifests/v2'), amd64.digest);
});

test.run();
