import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { promote, promoted, pushImage, pushMultiArch, pushSignature, tagDigest, tagsOf } from '../helpers/manage.js';
import { errorCode } from '../helpers/registry.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { skopeo } from '../helpers/skopeo.js';
import { storedBlobs } from '../helpers/stored.js';

// Promotion (POST /api/docker/<repoKey>/v2/promote and `wharf promote`) through the real server,
// checked by pulling with skopeo from the target and, for a move, failing from the source; the
// storage holds exactly the same blobs before and after (metadata only).

let wharf: TestServer;
let base: string;

test.before(async () => {
  wharf = await startWharf({
    repositories: {
      'docker-local': { type: 'local' },
      'docker-prod': { type: 'local', platformTags: true },
      docker: { type: 'virtual', repositories: ['docker-local', 'docker-prod'] },
    },
  });
  base = wharf.url;
});
test.after(() => wharf.cleanup());

const host = () => new URL(base).host;

/** Pulls with skopeo into a dir: layout and returns the digest of the manifest it wrote. */
async function pull(path: string, extra: string[] = []): Promise<string> {
  const out = await tempDir('wharf-promote-pull-');
  await skopeo([...extra, 'copy', '--src-tls-verify=false', `docker://${host()}/${path}`, `dir:${out}`]);
  return digestOf(await readFile(join(out, 'manifest.json')));
}

async function pullFails(path: string): Promise<boolean> {
  return pull(path).then(() => false, () => true);
}

test('copy: the target serves the image to skopeo, the source keeps it, no blob is written', async () => {
  const image = makeImage();
  await pushImage(base, 'docker-local/team/app', image, '1.0');
  const before = await storedBlobs(wharf);
  const text = await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/app', tag: '1.0', copy: true });
  assert.match(text, 'Copied docker-local/team/app:1.0 to docker-prod/team/app:1.0');
  assert.is(await pull('docker-prod/team/app:1.0'), image.digest);
  assert.is(await pull('docker-local/team/app:1.0'), image.digest);
  assert.equal(await storedBlobs(wharf), before);
});

test('move (copy absent): the source loses the tag, skopeo pulls it from the target only', async () => {
  const image = makeImage();
  await pushImage(base, 'docker-local/team/moving', image, '2.0');
  await pushImage(base, 'docker-local/team/moving', makeImage(), 'stays');
  const before = await storedBlobs(wharf);
  await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/moving', tag: '2.0' });
  assert.is(await pull('docker-prod/team/moving:2.0'), image.digest);
  assert.ok(await pullFails('docker-local/team/moving:2.0'));
  assert.equal(await tagsOf(base, 'docker-local/team/moving'), ['stays']);
  assert.equal(await storedBlobs(wharf), before);
});

test('rename and retag: targetDockerRepository and targetTag', async () => {
  const image = makeImage();
  await pushImage(base, 'docker-local/team/rename', image, 'rc1');
  await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/rename', targetDockerRepository: 'release/app', tag: 'rc1', targetTag: 'stable', copy: true });
  assert.is(await pull('docker-prod/release/app:stable'), image.digest);
  assert.is(await tagDigest(base, 'docker-prod/release/app/manifests/rc1'), null);
  assert.is(await tagDigest(base, 'docker-prod/team/rename/manifests/stable'), null);
  // A retag inside one repository and image, as a move: the old tag goes.
  await promoted(base, 'docker-prod', { targetRepo: 'docker-prod', dockerRepository: 'release/app', tag: 'stable', targetTag: 'gold' });
  assert.equal(await tagsOf(base, 'docker-prod/release/app'), ['gold']);
});

test('tag null: every tag of the image moves, and the image leaves the source', async () => {
  const images = [makeImage(), makeImage(), makeImage()];
  for (const [i, tag] of ['a', 'b', 'c'].entries()) await pushImage(base, 'docker-local/team/whole', images[i]!, tag);
  const before = await storedBlobs(wharf);
  await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/whole' });
  assert.equal(await tagsOf(base, 'docker-prod/team/whole'), ['a', 'b', 'c']);
  assert.is(await pull('docker-prod/team/whole:b'), images[1]!.digest);
  assert.is(await errorCode(await fetch(`${base}/v2/docker-local/team/whole/tags/list`)), 'NAME_UNKNOWN');
  const catalog = (await (await fetch(`${base}/api/docker/docker-local/v2/_catalog`)).json()) as { repositories: string[] };
  assert.not.ok(catalog.repositories.includes('team/whole'));
  assert.equal(await storedBlobs(wharf), before);
});

test('multi-arch: the index moves with its children and its signature; platform tags appear in the target', async () => {
  const { images, index } = await pushMultiArch(base, 'docker-local/team/multi', 'v1');
  const signature = await pushSignature(base, 'docker-local/team/multi', index, 'application/vnd.oci.image.index.v1+json');
  const before = await storedBlobs(wharf);
  await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/multi', tag: 'v1' });
  assert.is(await tagDigest(base, 'docker-prod/team/multi/manifests/v1'), index.digest);
  assert.is(await pull('docker-prod/team/multi:v1', ['--override-arch', 'arm64', '--override-variant', 'v8']), images[1]!.digest);
  assert.is(await pull('docker-prod/team/multi:v1', ['--override-arch', 'amd64']), images[0]!.digest);
  assert.equal(await tagsOf(base, 'docker-prod/team/multi'), ['v1', 'v1-linux-amd64', 'v1-linux-arm64-v8']);
  assert.is(await tagDigest(base, 'docker-prod/team/multi/manifests/v1-linux-arm64-v8'), images[1]!.digest);
  const referrers = (await (await fetch(`${base}/v2/docker-prod/team/multi/referrers/${index.digest}`)).json()) as { manifests: { digest: string }[] };
  assert.equal(referrers.manifests.map((d) => d.digest), [signature]);
  assert.ok(await pullFails('docker-local/team/multi:v1'));
  assert.equal(await storedBlobs(wharf), before);
});

test('skopeo copy --all into the source, then promote: the whole index pulls by platform from the target', async () => {
  const amd64 = makeImage({ architecture: 'amd64' });
  const arm64 = makeImage({ architecture: 'arm64' });
  const { makeIndex } = await import('../helpers/images.js');
  const index = makeIndex([amd64, arm64]);
  const layout = await tempDir('wharf-promote-layout-');
  await writeOciLayout(layout, 'v2', [amd64, arm64], index);
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:v2`, `docker://${host()}/docker-local/team/skopeo-all:v2`]);
  await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/skopeo-all', tag: 'v2', copy: true });
  assert.is(await pull('docker-prod/team/skopeo-all:v2', ['--override-arch', 'arm64']), arm64.digest);
  assert.equal(await tagsOf(base, 'docker-prod/team/skopeo-all'), ['v2', 'v2-linux-amd64', 'v2-linux-arm64']);
});

test('errors: unknown repository, image or tag, a target that is not local, malformed requests; nothing changes', async () => {
  const image = makeImage();
  await pushImage(base, 'docker-local/team/errors', image, '1');
  const cases: [string, Record<string, unknown>, number, string][] = [
    ['docker-nope', { targetRepo: 'docker-prod', dockerRepository: 'team/errors', tag: '1' }, 404, 'NAME_UNKNOWN'],
    ['docker-local', { targetRepo: 'docker-nope', dockerRepository: 'team/errors', tag: '1' }, 404, 'NAME_UNKNOWN'],
    ['docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/none', tag: '1' }, 404, 'NAME_UNKNOWN'],
    ['docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/errors', tag: 'nope' }, 404, 'MANIFEST_UNKNOWN'],
    ['docker-local', { targetRepo: 'docker', dockerRepository: 'team/errors', tag: '1' }, 400, 'UNSUPPORTED'],
    ['docker', { targetRepo: 'docker-prod', dockerRepository: 'team/errors', tag: '1' }, 400, 'UNSUPPORTED'],
    ['docker-local', { dockerRepository: 'team/errors' }, 400, 'REQUEST_INVALID'],
    ['docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/errors', copy: 'yes' }, 400, 'REQUEST_INVALID'],
    ['docker-local', { targetRepo: 'docker-prod', dockerRepository: '../etc', tag: '1' }, 400, 'NAME_INVALID'],
    ['docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/errors', targetTag: 'x' }, 400, 'REQUEST_INVALID'],
    ['docker-local', { targetRepo: 'docker-local', dockerRepository: 'team/errors', tag: '1' }, 400, 'REQUEST_INVALID'],
  ];
  for (const [key, body, status, code] of cases) {
    const response = await promote(base, key, body);
    assert.is(response.status, status, `${key} ${JSON.stringify(body)}`);
    assert.is(await errorCode(response), code, `${key} ${JSON.stringify(body)}`);
  }
  const malformed = await fetch(`${base}/api/docker/docker-local/v2/promote`, { method: 'POST', body: '{"targetRepo":' });
  assert.is(await errorCode(malformed), 'REQUEST_INVALID');
  assert.equal(await tagsOf(base, 'docker-local/team/errors'), ['1']);
  assert.is(await tagDigest(base, 'docker-prod/team/errors/manifests/1'), null);
});

test('a target tag that names another manifest is overwritten by an admin (authentication off): the old digest is gone from the tag', async () => {
  const old = makeImage();
  const next = makeImage();
  await pushImage(base, 'docker-prod/team/over', old, 'latest');
  await pushImage(base, 'docker-local/team/over', next, 'latest');
  const text = await promoted(base, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/over', tag: 'latest', copy: true });
  assert.match(text, 'Copied');
  assert.is(await tagDigest(base, 'docker-prod/team/over/manifests/latest'), next.digest);
});

test('wharf promote on the command line, while the server runs: move, then the server serves the result', async () => {
  const image = makeImage();
  await pushImage(base, 'docker-local/team/cli', image, '3.0');
  const config = `${wharf.dataDir}-promote.yaml`;
  await writeFile(config, JSON.stringify({
    dataDir: wharf.dataDir, storage: wharf.storage, listeners: [{ address: '127.0.0.1', port: 0 }],
    repositories: { 'docker-local': { type: 'local' }, 'docker-prod': { type: 'local', platformTags: true } }, auth: { enabled: false },
  }));
  const moved = await runCli(['promote', 'docker-local', 'team/cli:3.0', 'docker-prod', '--target-tag', 'prod', '--config', config]);
  assert.is(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, `moved docker-local/team/cli:3.0 to docker-prod/team/cli:prod (${image.digest})`);
  assert.match(moved.stderr, /action=promote-move target=docker-local\/team\/cli:3\.0->docker-prod\/team\/cli:prod result=ok/);
  assert.is(await pull('docker-prod/team/cli:prod'), image.digest);
  assert.ok(await pullFails('docker-local/team/cli:3.0'));
  const unknown = await runCli(['promote', 'docker-local', 'team/cli:3.0', 'docker-prod', '--config', config]);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, 'no tag 3.0 of team/cli in docker-local');
});

test.run();
