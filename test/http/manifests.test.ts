import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { maxManifestBytes } from '../../src/oci/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, descriptorOf, makeImage, makeIndex } from '../helpers/images.js';
import { errorCode, pushBlob, pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string;
const name = 'docker-local/team/app';

test.before(async () => {
  server = await startWharf({ repositories: { 'docker-local': { type: 'local' }, 'legacy': { type: 'local', blockSchema1: false } } });
  base = server.url;
});
test.after(async () => server.cleanup());

const manifestUrl = (reference: string, image = name) => `${base}/v2/${image}/manifests/${reference}`;

test('PUT by tag, then GET and HEAD by tag and by digest return the exact bytes', async () => {
  const image = makeImage();
  for (const item of [image.config, ...image.layers]) await pushBlob(base, name, item);
  const put = await putManifest(base, name, '1.0', image.manifest);
  assert.is(put.status, 201);
  assert.is(put.headers.get('docker-content-digest'), image.digest);
  assert.is(put.headers.get('location'), `/v2/${name}/manifests/${image.digest}`);
  for (const reference of ['1.0', image.digest]) {
    const get = await fetch(manifestUrl(reference), { headers: { Accept: OCI_MANIFEST } });
    assert.is(get.status, 200);
    assert.is(get.headers.get('content-type'), OCI_MANIFEST);
    assert.is(get.headers.get('docker-content-digest'), image.digest);
    assert.equal(Buffer.from(await get.arrayBuffer()), image.manifest);
    const head = await fetch(manifestUrl(reference), { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    assert.is(head.status, 200);
    assert.is(head.headers.get('content-length'), String(image.manifest.length));
    assert.is(head.headers.get('docker-content-digest'), image.digest);
  }
});

test('PUT by digest stores without a tag; a wrong digest is DIGEST_INVALID', async () => {
  const image = makeImage();
  for (const item of [image.config, ...image.layers]) await pushBlob(base, name, item);
  assert.is((await putManifest(base, name, image.digest, image.manifest)).status, 201);
  assert.is((await fetch(manifestUrl(image.digest))).status, 200);
  const wrong = await putManifest(base, name, digestOf(randomBytes(4)), image.manifest);
  assert.is(wrong.status, 400);
  assert.is(await errorCode(wrong), 'DIGEST_INVALID');
});

test('sha512, as blobs are: an image pushed and a manifest PUT by sha512 are verified, stored and served by that digest', async () => {
  const sha512 = (bytes: Buffer<ArrayBuffer>) => ({ digest: digestOf(bytes, 'sha512'), bytes });
  const config = sha512(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const layer = sha512(randomBytes(300));
  await pushBlob(base, name, config);
  const started = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  const finished = await fetch(`${base}${started.headers.get('location')}?digest=${layer.digest}`, { method: 'PUT', body: layer.bytes });
  assert.is(finished.status, 201);
  assert.is(finished.headers.get('docker-content-digest'), layer.digest);
  assert.equal(Buffer.from(await (await fetch(`${base}/v2/${name}/blobs/${layer.digest}`)).arrayBuffer()), layer.bytes);
  const manifest = sha512(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: descriptorOf(config, 'application/vnd.oci.image.config.v1+json'),
    layers: [descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar+gzip')],
  })));
  const wrong = await putManifest(base, name, digestOf(randomBytes(4), 'sha512'), manifest.bytes);
  assert.is(wrong.status, 400);
  assert.is(await errorCode(wrong), 'DIGEST_INVALID');
  const put = await putManifest(base, name, manifest.digest, manifest.bytes);
  assert.is(put.status, 201, await put.clone().text());
  assert.is(put.headers.get('docker-content-digest'), manifest.digest);
  assert.is(put.headers.get('location'), `/v2/${name}/manifests/${manifest.digest}`);
  for (const method of ['GET', 'HEAD']) {
    const read = await fetch(manifestUrl(manifest.digest), { method, headers: { Accept: OCI_MANIFEST } });
    assert.is(read.status, 200, method);
    assert.is(read.headers.get('docker-content-digest'), manifest.digest);
    if (method === 'GET') assert.equal(Buffer.from(await read.arrayBuffer()), manifest.bytes);
  }
  // An index by tag over it names the child by its sha512 digest, and is served by tag.
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...descriptorOf(manifest, OCI_MANIFEST), platform: { os: 'linux', architecture: 'amd64' } }] }));
  assert.is((await putManifest(base, name, 'sha512-index', index, OCI_INDEX)).status, 201);
  assert.is((await fetch(manifestUrl('sha512-index'), { headers: { Accept: OCI_INDEX } })).status, 200);
  // A remote repository in front of this one fetches, verifies and caches it by that digest too.
  const front = await startWharf({ repositories: { 'docker-remote': { type: 'remote', url: base } } });
  try {
    const remote = `${front.url}/v2/docker-remote/${name}`;
    const fetched = await fetch(`${remote}/manifests/${manifest.digest}`, { headers: { Accept: OCI_MANIFEST } });
    assert.is(fetched.status, 200, await fetched.clone().text());
    assert.is(fetched.headers.get('docker-content-digest'), manifest.digest);
    assert.equal(Buffer.from(await fetched.arrayBuffer()), manifest.bytes);
    assert.equal(Buffer.from(await (await fetch(`${remote}/blobs/${layer.digest}`)).arrayBuffer()), layer.bytes);
  } finally {
    await front.cleanup();
  }
});

test('Docker schema2 manifests and manifest lists, with Accept negotiation', async () => {
  const config = blob(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const layer = blob(randomBytes(300));
  await pushBlob(base, name, config);
  await pushBlob(base, name, layer);
  const schema2 = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST,
    config: descriptorOf(config, 'application/vnd.docker.container.image.v1+json'),
    layers: [descriptorOf(layer, 'application/vnd.docker.image.rootfs.diff.tar.gzip')],
  }));
  assert.is((await putManifest(base, name, 'amd', schema2, DOCKER_MANIFEST)).status, 201);
  const list = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST,
    manifests: [{ mediaType: DOCKER_MANIFEST, digest: digestOf(schema2), size: schema2.length, platform: { os: 'linux', architecture: 'amd64' } }],
  }));
  assert.is((await putManifest(base, name, 'multi', list, DOCKER_MANIFEST_LIST)).status, 201);
  // Accept as several header lines (fetch joins repeated appends the same way Node receives them).
  const headers = new Headers();
  headers.append('Accept', DOCKER_MANIFEST_LIST);
  headers.append('Accept', DOCKER_MANIFEST);
  const both = await fetch(manifestUrl('multi'), { headers });
  assert.is(both.headers.get('content-type'), DOCKER_MANIFEST_LIST);
  // A client that only takes image manifests gets the linux/amd64 image, as from Distribution.
  const imageOnly = await fetch(manifestUrl('multi'), { headers: { Accept: DOCKER_MANIFEST } });
  assert.is(imageOnly.status, 200);
  assert.is(imageOnly.headers.get('docker-content-digest'), digestOf(schema2));
  const neither = await fetch(manifestUrl('amd'), { headers: { Accept: OCI_MANIFEST } });
  assert.is(neither.status, 404);
  assert.is(await errorCode(neither), 'MANIFEST_UNKNOWN');
  // Without its mediaType a Docker manifest is refused (as Distribution does): its type would come
  // from the header alone, and the same bytes could then be pushed again under an OCI type.
  const unnamed = Buffer.from(JSON.stringify({ schemaVersion: 2, config: descriptorOf(config, 'application/vnd.docker.container.image.v1+json'), layers: [] }));
  const refused = await putManifest(base, name, 'unnamed', unnamed, DOCKER_MANIFEST);
  assert.is(refused.status, 400);
  assert.is(await errorCode(refused), 'MANIFEST_INVALID');
  assert.is((await fetch(manifestUrl('unnamed'))).status, 404, 'nothing stored');
  assert.is((await putManifest(base, name, 'unnamed', unnamed, OCI_MANIFEST)).status, 201, 'the same bytes as OCI, whose mediaType is optional');
});

test('an OCI index over two platforms', async () => {
  const images = [makeImage(), makeImage({ architecture: 'arm64' })];
  for (const image of images) await pushImage(base, name, image, `only-${image.platform.architecture}`);
  const index = makeIndex(images);
  assert.is((await putManifest(base, name, 'both', index.bytes, OCI_INDEX)).status, 201);
  const get = await fetch(manifestUrl('both'), { headers: { Accept: OCI_INDEX } });
  assert.equal(Buffer.from(await get.arrayBuffer()), index.bytes);
});

test('missing blobs or child manifests are MANIFEST_BLOB_UNKNOWN and store nothing', async () => {
  const image = makeImage();
  await pushBlob(base, name, image.config);
  const put = await putManifest(base, name, 'broken', image.manifest);
  assert.is(put.status, 400);
  assert.is(await errorCode(put), 'MANIFEST_BLOB_UNKNOWN');
  assert.is((await fetch(manifestUrl('broken'))).status, 404);
  assert.is((await fetch(manifestUrl(image.digest))).status, 404);
  const index = makeIndex([makeImage()]);
  const indexPut = await putManifest(base, name, 'broken-index', index.bytes, OCI_INDEX);
  assert.is(await errorCode(indexPut), 'MANIFEST_BLOB_UNKNOWN');
});

test('an index is refused (MANIFEST_BLOB_UNKNOWN) when what its children need is gone from the image: an inner index\'s child, a child\'s layer', async () => {
  const image = makeImage();
  await pushImage(base, name, image, 'inner-child');
  const inner = makeIndex([image]);
  assert.is((await putManifest(base, name, inner.digest, inner.bytes, OCI_INDEX)).status, 201);
  // The inner index is untagged: its child may be deleted.
  assert.is((await fetch(manifestUrl(image.digest), { method: 'DELETE' })).status, 202);
  const outer = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(inner, OCI_INDEX)] })));
  const put = await putManifest(base, name, 'outer', outer.bytes, OCI_INDEX);
  assert.is(put.status, 400);
  const body = await put.text();
  assert.match(body, 'MANIFEST_BLOB_UNKNOWN');
  assert.match(body, image.digest);
  assert.is((await fetch(manifestUrl('outer'))).status, 404);

  const untagged = makeImage();
  for (const item of [untagged.config, ...untagged.layers]) await pushBlob(base, name, item);
  assert.is((await putManifest(base, name, untagged.digest, untagged.manifest)).status, 201);
  const layer = untagged.layers[0]!.digest;
  assert.is((await fetch(`${base}/v2/${name}/blobs/${layer}`, { method: 'DELETE' })).status, 202);
  const over = await putManifest(base, name, 'over-untagged', makeIndex([untagged]).bytes, OCI_INDEX);
  assert.is(over.status, 400);
  assert.match(await over.text(), layer);
});

test('invalid and oversized manifests are refused', async () => {
  const garbage = await putManifest(base, name, 'bad', Buffer.from('not json'));
  assert.is(garbage.status, 400);
  assert.is(await errorCode(garbage), 'MANIFEST_INVALID');
  const huge = await putManifest(base, name, 'huge', Buffer.alloc(maxManifestBytes + 10, 32));
  assert.is(huge.status, 413);
  assert.is(await errorCode(huge), 'SIZE_INVALID');
  const badTag = await fetch(manifestUrl('.bad'), { method: 'PUT', body: '{}' });
  assert.is(await errorCode(badTag), 'MANIFEST_INVALID');
});

test('schema1 is refused with a conversion hint when blockSchema1 is on, accepted when off', async () => {
  const layer = blob(randomBytes(50));
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'team/old', tag: 'v1', architecture: 'amd64', fsLayers: [{ blobSum: layer.digest }], history: [{ v1Compatibility: '{}' }] }));
  await pushBlob(base, 'docker-local/team/old', layer);
  const blocked = await putManifest(base, 'docker-local/team/old', 'v1', schema1, DOCKER_SCHEMA1);
  assert.is(blocked.status, 400);
  const body = await blocked.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'MANIFEST_INVALID');
  assert.match(body.errors[0]!.message, 'skopeo copy --format v2s2');
  await pushBlob(base, 'legacy/team/old', layer);
  assert.is((await putManifest(base, 'legacy/team/old', 'v1', schema1, DOCKER_SCHEMA1)).status, 201);
});

test('DELETE by tag removes the tag only; DELETE by digest removes the manifest and its tags', async () => {
  const image = makeImage();
  await pushImage(base, name, image, 'del-a');
  assert.is((await putManifest(base, name, 'del-b', image.manifest)).status, 201);
  assert.is((await fetch(manifestUrl('del-a'), { method: 'DELETE' })).status, 202);
  assert.is((await fetch(manifestUrl('del-a'))).status, 404);
  assert.is((await fetch(manifestUrl('del-b'))).status, 200);
  assert.is((await fetch(manifestUrl(image.digest), { method: 'DELETE' })).status, 202);
  assert.is((await fetch(manifestUrl('del-b'))).status, 404);
  const again = await fetch(manifestUrl(image.digest), { method: 'DELETE' });
  assert.is(again.status, 404);
  assert.is(await errorCode(again), 'MANIFEST_UNKNOWN');
});

test('artifacts with a subject: OCI-Subject on push, listed by referrers with artifactType filter', async () => {
  const subject = makeImage();
  await pushImage(base, name, subject, 'signed');
  const empty = blob(Buffer.from('{}'));
  await pushBlob(base, name, empty);
  const artifact = (artifactType: string) => {
    const payload = blob(randomBytes(20));
    return {
      payload,
      bytes: Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType,
        config: descriptorOf(empty, 'application/vnd.oci.empty.v1+json'),
        layers: [descriptorOf(payload, 'application/octet-stream')],
        subject: descriptorOf({ digest: subject.digest, bytes: subject.manifest }, OCI_MANIFEST),
        annotations: { 'org.example.kind': artifactType },
      })),
    };
  };
  const sbom = artifact('application/vnd.example.sbom');
  const signature = artifact('application/vnd.example.signature');
  for (const item of [sbom, signature]) {
    await pushBlob(base, name, item.payload);
    const put = await putManifest(base, name, digestOf(item.bytes), item.bytes);
    assert.is(put.status, 201);
    assert.is(put.headers.get('oci-subject'), subject.digest);
  }
  const all = await fetch(`${base}/v2/${name}/referrers/${subject.digest}`);
  assert.is(all.status, 200);
  assert.is(all.headers.get('content-type'), OCI_INDEX);
  const index = await all.json() as { manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[] };
  assert.equal(index.manifests.map((m) => m.artifactType).sort(), ['application/vnd.example.sbom', 'application/vnd.example.signature']);
  assert.is(index.manifests.find((m) => m.digest === digestOf(sbom.bytes))!.annotations['org.example.kind'], 'application/vnd.example.sbom');
  const filtered = await fetch(`${base}/v2/${name}/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
  assert.is(filtered.headers.get('oci-filters-applied'), 'artifactType');
  const only = await filtered.json() as { manifests: { digest: string }[] };
  assert.equal(only.manifests.map((m) => m.digest), [digestOf(sbom.bytes)]);
  const none = await fetch(`${base}/v2/${name}/referrers/${digestOf(randomBytes(3))}`);
  assert.is(none.status, 200);
  assert.equal((await none.json() as { manifests: unknown[] }).manifests, []);
  // No artifactType: the config's media type stands for it, the empty one included (distribution-spec 1.1).
  const untyped = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(empty, 'application/vnd.oci.empty.v1+json'), layers: [],
    subject: descriptorOf({ digest: subject.digest, bytes: subject.manifest }, OCI_MANIFEST),
  }));
  assert.is((await putManifest(base, name, digestOf(untyped), untyped)).status, 201);
  const byEmpty = await fetch(`${base}/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/vnd.oci.empty.v1+json')}`);
  assert.equal((await byEmpty.json() as { manifests: { digest: string; artifactType: string }[] }).manifests.map((m) => [m.digest, m.artifactType]), [[digestOf(untyped), 'application/vnd.oci.empty.v1+json']]);
});

test('unknown manifests are MANIFEST_UNKNOWN', async () => {
  const response = await fetch(manifestUrl('never-pushed'));
  assert.is(response.status, 404);
  assert.is(await errorCode(response), 'MANIFEST_UNKNOWN');
});

test.run();
