import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { isDockerHub, upstreamImageName } from '../../src/repos/upstream-gate.js';
import { blob, descriptorOf, makeImage, makeIndex } from '../helpers/images.js';
import { seedBlob, seedImage } from '../helpers/registry.js';
import type { TestServer } from '../helpers/server.js';
import { startRemoteFixture, type CountingProxy, type Distribution, type RemoteFixture } from '../helpers/upstream.js';

// What a remote repository caches is the upstream's whole answer; what each client gets is
// negotiated from it, so no client's Accept header changes what the next client receives.

let fixture: RemoteFixture;
let distribution: Distribution;
let proxy: CountingProxy;
let wharf: TestServer;

// The remote's clock (its metadataTtl), moved past the TTL instead of waiting for it.
let clock = Date.now();

test.before(async () => {
  fixture = await startRemoteFixture((url) => ({ hub: { type: 'remote', url, metadataTtl: '1m' } }), { storageNow: () => clock });
  ({ distribution, proxy, wharf } = fixture);
});
test.after(() => fixture.stop());

async function seedIndex(name: string, tag: string) {
  const images = [makeImage(), makeImage({ architecture: 'arm64' })];
  for (const image of images) await seedImage(distribution.url, name, image, `only-${image.platform.architecture}`);
  const index = makeIndex(images);
  const put = await fetch(`${distribution.url}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': OCI_INDEX } });
  assert.is(put.status, 201);
  return { images, index };
}

test('a client that does not accept indexes gets the linux/amd64 image and does not poison the cache', async () => {
  const { images, index } = await seedIndex('team/multi', '1');
  const imageOnly = await fetch(`${wharf.url}/v2/hub/team/multi/manifests/1`, { headers: { Accept: OCI_MANIFEST } });
  assert.is(imageOnly.headers.get('docker-content-digest'), images[0]!.digest);
  assert.is(imageOnly.headers.get('content-type'), OCI_MANIFEST);
  const full = await fetch(`${wharf.url}/v2/hub/team/multi/manifests/1`, { headers: { Accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
  assert.is(full.headers.get('docker-content-digest'), index.digest);
  assert.equal(Buffer.from(await full.arrayBuffer()), index.bytes);
  const schema2Only = await fetch(`${wharf.url}/v2/hub/team/multi/manifests/1`, { headers: { Accept: DOCKER_MANIFEST } });
  assert.is(schema2Only.status, 404, 'neither the index nor its OCI images are acceptable');
});

test('child manifests pulled through an index are cached; the index by digest comes from the cache', async () => {
  const { images, index } = await seedIndex('team/cached', '1');
  await fetch(`${wharf.url}/v2/hub/team/cached/manifests/1`, { headers: { Accept: OCI_INDEX } });
  for (const image of images) await fetch(`${wharf.url}/v2/hub/team/cached/manifests/${image.digest}`);
  proxy.reset();
  for (const digest of [index.digest, ...images.map((i) => i.digest)]) {
    const response = await fetch(`${wharf.url}/v2/hub/team/cached/manifests/${digest}`);
    assert.is(response.status, 200);
    assert.is(response.headers.get('docker-content-digest'), digest);
  }
  assert.equal(proxy.counts, {}, 'nothing reached the upstream');
});

test('referrers are proxied and cached for metadataTtl', async () => {
  const subject = makeImage();
  await seedImage(distribution.url, 'team/signed', subject, '1');
  const empty = blob(Buffer.from('{}'));
  const payload = blob(randomBytes(30));
  await seedBlob(distribution.url, 'team/signed', empty);
  await seedBlob(distribution.url, 'team/signed', payload);
  const artifact = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { ...descriptorOf(empty, 'application/vnd.example.sbom'), },
    layers: [descriptorOf(payload, 'application/octet-stream')],
    subject: descriptorOf({ digest: subject.digest, bytes: subject.manifest }, OCI_MANIFEST),
  }));
  await fetch(`${distribution.url}/v2/team/signed/manifests/sbom`, { method: 'PUT', body: artifact, headers: { 'Content-Type': OCI_MANIFEST } });
  proxy.reset();
  const first = await fetch(`${wharf.url}/v2/hub/team/signed/referrers/${subject.digest}`);
  assert.is(first.status, 200);
  const body = await first.json() as { manifests: { digest: string }[] };
  // Distribution 2.8 predates the referrers API (404), and no referrers tag was pushed: an empty index.
  const expected = body.manifests.length === 0 ? [] : [digestOf(artifact)];
  assert.equal(body.manifests.map((m) => m.digest), expected);
  await fetch(`${wharf.url}/v2/hub/team/signed/referrers/${subject.digest}`);
  assert.is(proxy.counts['GET other'], 1, 'the second answer came from the cache');
  clock += 2 * 60_000;
  await fetch(`${wharf.url}/v2/hub/team/signed/referrers/${subject.digest}`);
  assert.is(proxy.counts['GET other'], 2, 'asked again after metadataTtl');
});

test('an upstream without the referrers API: its referrers tag (sha256-<hex>) is answered, filtered and revalidated after metadataTtl', async () => {
  const subject = makeImage();
  await seedImage(distribution.url, 'team/tagged', subject, '1');
  const empty = blob(Buffer.from('{}'));
  await seedBlob(distribution.url, 'team/tagged', empty);
  const pushArtifact = async (artifactType: string) => {
    const payload = blob(randomBytes(30));
    await seedBlob(distribution.url, 'team/tagged', payload);
    const bytes = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: descriptorOf(empty, artifactType),
      layers: [descriptorOf(payload, 'application/octet-stream')],
      subject: descriptorOf({ digest: subject.digest, bytes: subject.manifest }, OCI_MANIFEST),
    }));
    const put = await fetch(`${distribution.url}/v2/team/tagged/manifests/${digestOf(bytes)}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.is(put.status, 201, await put.text());
    return { mediaType: OCI_MANIFEST, digest: digestOf(bytes), size: bytes.length, artifactType };
  };
  // What a client of a registry without the referrers API pushes (distribution-spec 1.1, Referrers Tag Schema).
  const tagReferrers = async (manifests: object[]) => {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    const put = await fetch(`${distribution.url}/v2/team/tagged/manifests/${subject.digest.replace(':', '-')}`, { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } });
    assert.is(put.status, 201, await put.text());
  };
  const sbom = await pushArtifact('application/vnd.example.sbom');
  const signature = await pushArtifact('application/vnd.example.signature');
  await tagReferrers([sbom, signature]);
  const referrers = `${wharf.url}/v2/hub/team/tagged/referrers/${subject.digest}`;
  assert.is((await fetch(`${distribution.url}/v2/team/tagged/referrers/${subject.digest}`)).status, 404, 'the upstream has no referrers API');

  const all = await fetch(referrers);
  assert.is(all.status, 200);
  assert.equal((await all.json() as { manifests: unknown[] }).manifests, [sbom, signature]);
  const filtered = await fetch(`${referrers}?artifactType=application/vnd.example.sbom`);
  assert.is(filtered.headers.get('oci-filters-applied'), 'artifactType');
  assert.equal((await filtered.json() as { manifests: unknown[] }).manifests, [sbom]);

  const attestation = await pushArtifact('application/vnd.example.attestation');
  await tagReferrers([sbom, signature, attestation]);
  clock += 2 * 60_000;
  const later = await fetch(referrers);
  assert.equal((await later.json() as { manifests: unknown[] }).manifests, [sbom, signature, attestation], 'the tag is read again after metadataTtl');

  const none = await fetch(`${wharf.url}/v2/hub/team/tagged/referrers/${sbom.digest}`);
  assert.is(none.status, 200);
  assert.equal((await none.json() as { manifests: unknown[] }).manifests, [], 'no referrers tag either: an empty index');

  // A sha512 subject's tag is cut to 64 characters of the digest (a tag is at most 128).
  const long = `sha512:${'ab'.repeat(64)}`;
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sbom] }));
  const put = await fetch(`${distribution.url}/v2/team/tagged/manifests/sha512-${'ab'.repeat(32)}`, { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } });
  assert.is(put.status, 201, await put.text());
  const truncated = await fetch(`${wharf.url}/v2/hub/team/tagged/referrers/${long}`);
  assert.is(truncated.status, 200);
  assert.equal((await truncated.json() as { manifests: unknown[] }).manifests, [sbom], 'read from sha512-<first 64 characters>');
});

test('Docker Hub names: single-component images live under library/', () => {
  assert.ok(isDockerHub('https://registry-1.docker.io'));
  assert.not.ok(isDockerHub('https://ghcr.io'));
  assert.is(upstreamImageName(true, 'alpine'), 'library/alpine');
  assert.is(upstreamImageName(true, 'bitnami/redis'), 'bitnami/redis');
  assert.is(upstreamImageName(false, 'alpine'), 'alpine');
});

test.run();
