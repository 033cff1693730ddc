import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, makeImage, type Image } from '../helpers/images.js';
import { pushMultiArch } from '../helpers/manage.js';
import { errorCode, pushImage, seedImage } from '../helpers/registry.js';
import { remoteFixture } from '../helpers/upstream.js';
import { eventually } from '../helpers/auth.js';
import { storedBlobs } from '../helpers/stored.js';

// Tag info (GET /api/docker/<repoKey>/info/<image>/<tag>) and Artifactory's storage API on a
// tag's manifest.json (?properties, ?stats, file info), checked against the image config that
// was pushed: ports, volumes, env, entrypoint, cmd, labels, and the layer history with empty
// layers; sizes, platforms, push and pull times, download counts; through local, virtual and
// remote repositories.

const fixture = remoteFixture(test, (url) => ({
  'docker-local': { type: 'local' },
  'docker-remote': { type: 'remote', url },
  docker: { type: 'virtual', repositories: ['docker-local', 'docker-remote'] },
}));
const base = () => fixture.wharf.url;

/** An image whose config says everything the Docker Info tab shows. */
function richImage(): Image & { configJson: Record<string, unknown> } {
  const layers = [blob(gzipSync(randomBytes(3000))), blob(gzipSync(randomBytes(5000)))];
  const configJson = {
    architecture: 'amd64', os: 'linux', created: '2026-11-30T10:00:00Z',
    config: {
      ExposedPorts: { '8080/tcp': {}, '9090/udp': {} }, Volumes: { '/data': {} }, Env: ['PATH=/usr/bin', 'MODE=prod'],
      Entrypoint: ['/app/server'], Cmd: ['--port', '8080'], WorkingDir: '/app', User: 'app',
      Labels: { 'org.opencontainers.image.source': 'https://example.com/app', team: 'payments', 'a,b\\c': 'odd', nonce: randomBytes(4).toString('hex') },
    },
    history: [
      { created: '2026-11-30T09:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
      { created: '2026-11-30T09:00:01Z', created_by: '/bin/sh -c #(nop)  ENV MODE=prod', empty_layer: true },
      { created: '2026-11-30T09:00:02Z', created_by: 'RUN /bin/sh -c make install # buildkit', comment: 'buildkit.dockerfile.v0' },
      { created: '2026-11-30T09:00:03Z', created_by: 'LABEL team=payments', empty_layer: true },
    ],
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  const config = blob(Buffer.from(JSON.stringify(configJson)));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: descriptorOf(config, 'application/vnd.oci.image.config.v1+json'),
    layers: layers.map((l) => descriptorOf(l, 'application/vnd.oci.image.layer.v1.tar+gzip')),
  })) as Buffer<ArrayBuffer>;
  return { config, layers, manifest, digest: blob(manifest).digest, platform: { os: 'linux', architecture: 'amd64' }, configJson };
}

interface Info {
  repository: string; digest: string; mediaType: string; totalSize: number; downloadCount: number; lastPushed: string; lastPulled: string | null;
  platforms: { os: string; architecture: string; variant: string | null; digest: string }[];
  images: { digest: string; ports: string[]; volumes: string[]; env: string[]; entrypoint: string[]; cmd: string[]; workingDir: string; user: string; labels: Record<string, string>; created: string; size: number;
    history: { created: string; createdBy: string; comment: string | null; emptyLayer: boolean; digest: string | null; size: number }[] }[];
  properties: Record<string, string[]>;
}

async function info(path: string): Promise<Info> {
  const response = await fetch(`${base()}/api/docker/${path}`);
  assert.is(response.status, 200, await response.clone().text());
  return response.json() as Promise<Info>;
}

test('tag info matches the image config: ports, volumes, env, entrypoint, cmd, labels, history with empty layers, sizes', async () => {
  const image = richImage();
  const before = Date.now();
  await pushImage(base(), 'docker-local/team/rich', image, '1.0');
  const found = await info('docker-local/info/team/rich/1.0');
  assert.is(found.digest, image.digest);
  assert.is(found.mediaType, OCI_MANIFEST);
  assert.is(found.totalSize, image.config.bytes.length + image.layers[0]!.bytes.length + image.layers[1]!.bytes.length);
  assert.equal(found.platforms, [{ os: 'linux', architecture: 'amd64', variant: null, digest: image.digest }]);
  assert.ok(Date.parse(found.lastPushed) >= before - 1000);
  const [only] = found.images;
  assert.equal(only!.ports, ['8080/tcp', '9090/udp']);
  assert.equal(only!.volumes, ['/data']);
  assert.equal(only!.env, ['PATH=/usr/bin', 'MODE=prod']);
  assert.equal(only!.entrypoint, ['/app/server']);
  assert.equal(only!.cmd, ['--port', '8080']);
  assert.is(only!.workingDir, '/app');
  assert.is(only!.user, 'app');
  assert.is(only!.created, '2026-11-30T10:00:00Z');
  assert.equal(only!.labels, (image.configJson.config as { Labels: Record<string, string> }).Labels);
  assert.equal(only!.history, [
    { created: '2026-11-30T09:00:00Z', createdBy: '/bin/sh -c #(nop) ADD file:abc in / ', comment: null, emptyLayer: false, digest: image.layers[0]!.digest, size: image.layers[0]!.bytes.length },
    { created: '2026-11-30T09:00:01Z', createdBy: '/bin/sh -c #(nop)  ENV MODE=prod', comment: null, emptyLayer: true, digest: null, size: 0 },
    { created: '2026-11-30T09:00:02Z', createdBy: 'RUN /bin/sh -c make install # buildkit', comment: 'buildkit.dockerfile.v0', emptyLayer: false, digest: image.layers[1]!.digest, size: image.layers[1]!.bytes.length },
    { created: '2026-11-30T09:00:03Z', createdBy: 'LABEL team=payments', comment: null, emptyLayer: true, digest: null, size: 0 },
  ]);
});

test('last pulled and download count: GETs count, HEADs do not', async () => {
  const image = makeImage();
  await pushImage(base(), 'docker-local/team/pulled', image, '1');
  const fresh = await info('docker-local/info/team/pulled/1');
  assert.is(fresh.downloadCount, 0);
  assert.is(fresh.lastPulled, null);
  for (let i = 0; i < 3; i++) await (await fetch(`${base()}/v2/docker-local/team/pulled/manifests/1`)).arrayBuffer();
  await fetch(`${base()}/v2/docker-local/team/pulled/manifests/1`, { method: 'HEAD' });
  const pulled = await info('docker-local/info/team/pulled/1');
  assert.is(pulled.downloadCount, 3);
  assert.ok(pulled.lastPulled !== null);
  const stats = (await (await fetch(`${base()}/api/storage/docker-local/team/pulled/1/manifest.json?stats`)).json()) as { downloadCount: number };
  assert.is(stats.downloadCount, 3);
});

test('Artifactory properties on manifest.json: docker.* and sha256, labels as docker.label.*, filtered on request; file info', async () => {
  const image = richImage();
  await pushImage(base(), 'docker-local/team/props', image, '2.0');
  const response = await fetch(`${base()}/api/storage/docker-local/team/props/2.0/manifest.json?properties`);
  const body = (await response.json()) as { properties: Record<string, string[]>; uri: string };
  assert.equal(body.properties['docker.repoName'], ['team/props']);
  assert.equal(body.properties['docker.manifest'], ['2.0']);
  assert.equal(body.properties['docker.manifest.digest'], [image.digest]);
  assert.equal(body.properties['docker.manifest.type'], ['ManifestV2']);
  assert.equal(body.properties.sha256, [image.digest.slice(7)]);
  assert.equal(body.properties['docker.label.team'], ['payments']);
  assert.equal(body.properties['docker.label.org.opencontainers.image.source'], ['https://example.com/app']);
  assert.is(body.uri, `${base()}/api/storage/docker-local/team/props/2.0/manifest.json`);
  const filtered = (await (await fetch(`${base()}/api/storage/docker-local/team/props/2.0/manifest.json?properties=docker.label.team,sha256`)).json()) as { properties: Record<string, string[]> };
  assert.equal(Object.keys(filtered.properties).sort(), ['docker.label.team', 'sha256']);
  assert.is((await fetch(`${base()}/api/storage/docker-local/team/props/2.0/manifest.json?properties=nope`)).status, 404);
  // Artifactory's escape: a backslash (%5C) before a comma or a backslash takes it literally.
  const escaped = (await (await fetch(`${base()}/api/storage/docker-local/team/props/2.0/manifest.json?properties=docker.label.a%5C,b%5C%5Cc,sha256`)).json()) as { properties: Record<string, string[]> };
  assert.equal(escaped.properties, { 'docker.label.a,b\\c': ['odd'], sha256: [image.digest.slice(7)] });
  const file = (await (await fetch(`${base()}/api/storage/docker-local/team/props/2.0/manifest.json`)).json()) as { size: string; checksums: { sha256: string }; mimeType: string };
  assert.equal(file, { ...file, size: String(image.manifest.length), checksums: { sha256: image.digest.slice(7) }, mimeType: OCI_MANIFEST });
});

test('a multi-arch tag: each platform with its own info, the total over them, ManifestList', async () => {
  const { images, index } = await pushMultiArch(base(), 'docker-local/team/multi', 'v1');
  const found = await info('docker-local/info/team/multi/v1');
  assert.is(found.digest, index.digest);
  assert.equal(found.platforms.map((p) => [p.architecture, p.variant, p.digest]), [['amd64', null, images[0]!.digest], ['arm64', 'v8', images[1]!.digest]]);
  assert.equal(found.images.map((i) => i.digest), [images[0]!.digest, images[1]!.digest]);
  const sizes = images.map((image) => image.config.bytes.length + image.layers.reduce((total, layer) => total + layer.bytes.length, 0));
  assert.is(found.totalSize, sizes[0]! + sizes[1]!);
  assert.equal(found.properties['docker.manifest.type'], ['ManifestList']);
  const list = await fetch(`${base()}/api/storage/docker-local/team/multi/v1/list.manifest.json?properties=docker.manifest.digest`);
  assert.equal(((await list.json()) as { properties: Record<string, string[]> }).properties['docker.manifest.digest'], [index.digest]);
});

test('through a virtual repository (the member that holds it is named) and a remote one (config read from its cache)', async () => {
  const image = richImage();
  await pushImage(base(), 'docker-local/team/virtual', image, '1');
  const viaVirtual = await info('docker/info/team/virtual/1');
  assert.is(viaVirtual.repository, 'docker-local');
  assert.is(viaVirtual.digest, image.digest);
  const upstream = richImage();
  await seedImage(fixture.distribution.url, 'team/cached', upstream, '7');
  await (await fetch(`${base()}/v2/docker-remote/team/cached/manifests/7`)).arrayBuffer();
  await (await fetch(`${base()}/v2/docker-remote/team/cached/blobs/${upstream.config.digest}`)).arrayBuffer();
  // The cache commits the blob just after its last byte is sent.
  await eventually('the config is in the cache', async () => (await storedBlobs(fixture.wharf)).includes(upstream.config.digest));
  const cached = await info('docker-remote/info/team/cached/7');
  assert.equal(cached.images[0]!.labels, (upstream.configJson.config as { Labels: Record<string, string> }).Labels);
  assert.is(cached.images[0]!.history.length, 4);
  assert.is(cached.downloadCount, 1);
  const viaVirtualRemote = await info('docker/info/team/cached/7');
  assert.is(viaVirtualRemote.repository, 'docker-remote');
});

test('unknown repository, image, tag and malformed paths get spec errors', async () => {
  assert.is(await errorCode(await fetch(`${base()}/api/docker/docker-nope/info/team/x/1`)), 'NAME_UNKNOWN');
  assert.is(await errorCode(await fetch(`${base()}/api/docker/docker-local/info/team/none/1`)), 'MANIFEST_UNKNOWN');
  assert.is(await errorCode(await fetch(`${base()}/api/docker/docker-local/info/Team/x/1`)), 'NAME_INVALID');
  assert.is(await errorCode(await fetch(`${base()}/api/docker/docker-local/info/notag`)), 'NAME_INVALID');
  assert.is(await errorCode(await fetch(`${base()}/api/storage/docker-local/team/x/1/layer.tar`)), 'NAME_UNKNOWN');
  assert.is(await errorCode(await fetch(`${base()}/api/storage/docker-local/..%2F..%2Fmeta.db/1/manifest.json`)), 'NAME_INVALID');
});

test.run();
