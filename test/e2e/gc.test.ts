import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_INDEX } from '../../src/oci/mediatypes.js';
import { descriptorOf, makeImage, makeIndex, type Image } from '../helpers/images.js';
import { errorCode, pushBlob, pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, testStorage, type TestServer } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';

// Garbage collection end to end, on SQLite + filesystem and on PostgreSQL + S3: the bytes of
// what nothing reaches go, shared and reachable bytes stay, and deletion works as Artifactory
// documents it. The store's clock is moved past gc.grace instead of waiting for it.

const hour = 3_600_000;
const repo = 'docker-local';

function blobsOf(image: Image): string[] {
  return [image.config.digest, ...image.layers.map((layer) => layer.digest)];
}

async function pullable(base: string, name: string, reference: string, image: Image): Promise<void> {
  const manifest = await fetch(`${base}/v2/${name}/manifests/${reference}`);
  assert.is(manifest.status, 200, `${name}:${reference}`);
  assert.ok(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest));
  for (const item of [image.config, ...image.layers]) {
    const response = await fetch(`${base}/v2/${name}/blobs/${item.digest}`);
    assert.is(response.status, 200, `${item.digest} of ${name}:${reference}`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(item.bytes));
  }
}

for (const layout of ['default', 's3-postgres']) {
  const test = suite(`garbage collection (${layout})`);
  let wharf: TestServer;
  let clock = 0;
  const later = () => { clock += 2 * hour; };
  /** Runs once, before the next DELETE unlinks (the lifecycle's hook). */
  let beforeUnlink: (() => Promise<void>) | null = null;
  test.before.each(async () => {
    clock = Date.now();
    beforeUnlink = null;
    wharf = await startWharf({
      storage: await testStorage(layout),
      storageNow: () => clock,
      hooks: { beforeUnlink: async () => { const run = beforeUnlink; beforeUnlink = null; await run?.(); } },
      repositories: { [repo]: { type: 'local' }, pinned: { type: 'local', gc: { untagged: 'keep' } } },
    });
  });
  test.after.each(async () => { await wharf.cleanup(); });

  test('delete a tag, collect: exactly the orphaned bytes go, shared ones stay, the other image still pulls', async () => {
    const shared = makeImage({ layers: 1 }).layers[0]!;
    const doomed = makeImage({ share: [shared, makeImage({ layers: 1 }).layers[0]!] });
    const kept = makeImage({ share: [shared, makeImage({ layers: 1 }).layers[0]!] });
    await pushImage(wharf.url, `${repo}/team/a`, doomed, '1');
    await pushImage(wharf.url, `${repo}/team/b`, kept, '1');
    const before = await storedBlobs(wharf);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/team/a/manifests/1`, { method: 'DELETE' })).status, 202);
    assert.is((await wharf.collectGarbage()).blobs, 0, 'nothing within gc.grace goes');
    later();
    const dry = await wharf.collectGarbage({ dryRun: true });
    assert.equal({ manifests: dry.manifests, blobs: dry.blobs }, { manifests: 1, blobs: 2 });
    assert.equal(await storedBlobs(wharf), before, 'a dry run changes nothing');
    const summary = await wharf.collectGarbage();
    assert.equal({ manifests: summary.manifests, blobs: summary.blobs, bytes: summary.bytes }, {
      manifests: 1, blobs: 2, bytes: doomed.config.bytes.length + doomed.layers[1]!.bytes.length,
    });
    const orphaned = [doomed.config.digest, doomed.layers[1]!.digest];
    assert.equal(await storedBlobs(wharf), before.filter((digest) => !orphaned.includes(digest)));
    await pullable(wharf.url, `${repo}/team/b`, '1', kept);
    const catalog = (await (await fetch(`${wharf.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.equal(catalog.repositories, [`${repo}/team/b`], 'the empty image left the catalog');
    assert.is((await wharf.collectGarbage()).blobs, 0, 'a second collection finds nothing');
  });

  test('a blob HEAD answers 200 for is kept for gc.grace: the client that skipped its upload can name it in a manifest', async () => {
    const reused = makeImage({ layers: 1 });
    const unread = makeImage({ layers: 1 });
    for (const image of [reused, unread]) {
      await pushImage(wharf.url, `${repo}/team/ci`, image, image === reused ? 't1' : 'other');
      assert.is((await fetch(`${wharf.url}/v2/${repo}/team/ci/manifests/${image === reused ? 't1' : 'other'}`, { method: 'DELETE' })).status, 202);
    }
    later();
    // The next push checks its blobs: here already, so it uploads nothing.
    for (const digest of blobsOf(reused)) assert.is((await fetch(`${wharf.url}/v2/${repo}/team/ci/blobs/${digest}`, { method: 'HEAD' })).status, 200);
    const summary = await wharf.collectGarbage();
    assert.equal({ manifests: summary.manifests, blobs: summary.blobs }, { manifests: 2, blobs: blobsOf(unread).length }, 'what nobody read goes');
    assert.is((await putManifest(wharf.url, `${repo}/team/ci`, 't2', reused.manifest)).status, 201);
    await pullable(wharf.url, `${repo}/team/ci`, 't2', reused);
  });

  test('an index keeps its children, a kept manifest keeps its referrers; gc.untagged: keep keeps every manifest', async () => {
    const amd = makeImage();
    const arm = makeImage({ architecture: 'arm64' });
    const index = makeIndex([amd, arm]);
    for (const image of [amd, arm]) await pushImage(wharf.url, `${repo}/multi`, image, `only-${image.platform.architecture}`);
    assert.is((await putManifest(wharf.url, `${repo}/multi`, 'latest', index.bytes, OCI_INDEX)).status, 201);
    for (const image of [amd, arm]) await fetch(`${wharf.url}/v2/${repo}/multi/manifests/only-${image.platform.architecture}`, { method: 'DELETE' });
    const signature = makeImage({ layers: 1 });
    const referrer: Buffer<ArrayBuffer> = Buffer.from(JSON.stringify({ ...JSON.parse(signature.manifest.toString()), subject: descriptorOf({ digest: index.digest, bytes: index.bytes }, OCI_INDEX) }));
    await pushBlob(wharf.url, `${repo}/multi`, signature.config);
    await pushBlob(wharf.url, `${repo}/multi`, signature.layers[0]!);
    assert.is((await putManifest(wharf.url, `${repo}/multi`, digestOf(referrer), referrer)).status, 201);
    const pinned = makeImage();
    await pushImage(wharf.url, 'pinned/app', pinned, 'v1');
    await fetch(`${wharf.url}/v2/pinned/app/manifests/v1`, { method: 'DELETE' });
    later();
    const summary = await wharf.collectGarbage();
    assert.is(summary.manifests, 0);
    assert.is(summary.blobs, 0);
    await pullable(wharf.url, `${repo}/multi`, amd.digest, amd);
    await pullable(wharf.url, `${repo}/multi`, arm.digest, arm);
    const referrers = (await (await fetch(`${wharf.url}/v2/${repo}/multi/referrers/${index.digest}`)).json()) as { manifests: unknown[] };
    assert.is(referrers.manifests.length, 1);
    await pullable(wharf.url, 'pinned/app', pinned.digest, pinned);
    // Untag the index: it, its children and its referrer go together.
    await fetch(`${wharf.url}/v2/${repo}/multi/manifests/latest`, { method: 'DELETE' });
    later();
    const after = await wharf.collectGarbage();
    assert.is(after.manifests, 4);
    assert.is(after.blobs, blobsOf(amd).length + blobsOf(arm).length + 2);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/multi/manifests/${amd.digest}`)).status, 404);
  });

  test('a child manifest a tagged index lists is not deleted by digest (409 naming the index and tag); once the index is untagged it is', async () => {
    const amd = makeImage();
    const arm = makeImage({ architecture: 'arm64' });
    const index = makeIndex([amd, arm]);
    for (const image of [amd, arm]) await pushImage(wharf.url, `${repo}/kids`, image, image.digest);
    assert.is((await putManifest(wharf.url, `${repo}/kids`, 'v1', index.bytes, OCI_INDEX)).status, 201);
    const refused = await fetch(`${wharf.url}/v2/${repo}/kids/manifests/${arm.digest}`, { method: 'DELETE' });
    assert.is(refused.status, 409);
    const body = (await refused.json()) as { errors: { code: string; message: string }[] };
    assert.is(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, `${index.digest} (tag v1)`);
    await pullable(wharf.url, `${repo}/kids`, arm.digest, arm);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/kids/manifests/v1`, { method: 'DELETE' })).status, 202);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/kids/manifests/${arm.digest}`, { method: 'DELETE' })).status, 202);
  });

  test('an index pushed and tagged while its child is being deleted by digest: the delete is refused (409), the tag pulls', async () => {
    const amd = makeImage();
    const arm = makeImage({ architecture: 'arm64' });
    const index = makeIndex([amd, arm]);
    for (const image of [amd, arm]) await pushImage(wharf.url, `${repo}/race`, image, image.digest);
    beforeUnlink = async () => { assert.is((await putManifest(wharf.url, `${repo}/race`, 'v1', index.bytes, OCI_INDEX)).status, 201); };
    const refused = await fetch(`${wharf.url}/v2/${repo}/race/manifests/${arm.digest}`, { method: 'DELETE' });
    assert.is(beforeUnlink, null, 'the hook ran');
    assert.is(refused.status, 409);
    assert.match(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message, `${index.digest} (tag v1)`);
    await pullable(wharf.url, `${repo}/race`, arm.digest, arm);
  });

  test('a manifest or blob an index of indexes needs through an untagged inner index is not deleted (409 naming the tagged one)', async () => {
    const amd = makeImage();
    const arm = makeImage({ architecture: 'arm64' });
    const inner = makeIndex([amd, arm]);
    const outer: Buffer<ArrayBuffer> = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptorOf(inner, OCI_INDEX)] }));
    for (const image of [amd, arm]) await pushImage(wharf.url, `${repo}/nest`, image, image.digest);
    assert.is((await putManifest(wharf.url, `${repo}/nest`, inner.digest, inner.bytes, OCI_INDEX)).status, 201);
    assert.is((await putManifest(wharf.url, `${repo}/nest`, 'v1', outer, OCI_INDEX)).status, 201);
    for (const path of [`manifests/${inner.digest}`, `manifests/${arm.digest}`, `blobs/${arm.layers[0]!.digest}`]) {
      const refused = await fetch(`${wharf.url}/v2/${repo}/nest/${path}`, { method: 'DELETE' });
      assert.is(refused.status, 409, path);
      assert.match(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message, `${digestOf(outer)} (tag v1)`);
    }
    await pullable(wharf.url, `${repo}/nest`, arm.digest, arm);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/nest/manifests/v1`, { method: 'DELETE' })).status, 202);
    assert.is((await fetch(`${wharf.url}/v2/${repo}/nest/manifests/${arm.digest}`, { method: 'DELETE' })).status, 202, 'untagged, it goes');
  });

  test('Artifactory deletion: a tag, a whole image; a blob a tagged manifest uses is refused with 409 naming it', async () => {
    const image = makeImage();
    await pushImage(wharf.url, `${repo}/team/app`, image, '1.0');
    await pushImage(wharf.url, `${repo}/team/app`, image, '2.0');
    const blob = await fetch(`${wharf.url}/v2/${repo}/team/app/blobs/${image.layers[0]!.digest}`, { method: 'DELETE' });
    assert.is(blob.status, 409);
    const body = (await blob.json()) as { errors: { code: string; message: string }[] };
    assert.is(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, image.digest);
    assert.is((await fetch(`${wharf.url}/artifactory/${repo}/team/app/1.0`, { method: 'DELETE' })).status, 204);
    const tags = (await (await fetch(`${wharf.url}/v2/${repo}/team/app/tags/list`)).json()) as { tags: string[] };
    assert.equal(tags.tags, ['2.0']);
    assert.is((await fetch(`${wharf.url}/artifactory/${repo}/team/app`, { method: 'DELETE' })).status, 204);
    assert.is(await errorCode(await fetch(`${wharf.url}/v2/${repo}/team/app/tags/list`)), 'NAME_UNKNOWN');
    assert.is((await fetch(`${wharf.url}/artifactory/${repo}/team/app`, { method: 'DELETE' })).status, 404);
    assert.is((await fetch(`${wharf.url}/artifactory/nope/team/app`, { method: 'DELETE' })).status, 404);
    later();
    assert.is((await wharf.collectGarbage()).blobs, blobsOf(image).length);
    assert.equal(await storedBlobs(wharf), []);
  });

  test.run();
}
