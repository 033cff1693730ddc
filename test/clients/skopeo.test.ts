import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, makeIndex, writeOciLayout } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';

// Real-client tests: Debian's skopeo pushes, inspects, lists, pulls and deletes through Wharf.

let server: TestServer;
let host: string;

test.before(async () => {
  server = await startWharf();
  host = server.url.replace('http://', '');
});
test.after(async () => server.cleanup());

async function layoutTopDigest(dir: string): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

test('copy an OCI layout in, inspect, list tags, copy it back out with identical digests', async () => {
  const image = makeImage({ layers: 3 });
  const source = await tempDir('wharf-oci-');
  await writeOciLayout(source, 'v1', [image]);
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${source}:v1`, `docker://${host}/docker-local/team/app:1.0`]);
  const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${host}/docker-local/team/app:1.0`])) as { Digest: string; Layers: string[] };
  assert.is(inspected.Digest, image.digest);
  assert.equal(inspected.Layers, image.layers.map((l) => l.digest));
  const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${host}/docker-local/team/app`])) as { Tags: string[] };
  assert.equal(tags.Tags, ['1.0']);
  const target = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/docker-local/team/app:1.0`, `oci:${target}:out`]);
  assert.is(await layoutTopDigest(target), image.digest);
  for (const layer of image.layers) {
    assert.equal(await readFile(join(target, 'blobs', 'sha256', layer.digest.slice(7))), layer.bytes);
  }
});

test('a two-platform index pushed and pulled with --all keeps every digest', async () => {
  const images = [makeImage(), makeImage({ architecture: 'arm64' })];
  const index = makeIndex(images);
  const source = await tempDir('wharf-oci-');
  await writeOciLayout(source, 'multi', images, index);
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${source}:multi`, `docker://${host}/docker-local/team/multi:2.0`]);
  const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/docker-local/team/multi:2.0`]);
  assert.is(raw, index.bytes.toString());
  const target = await tempDir('wharf-oci-out-');
  await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${host}/docker-local/team/multi:2.0`, `oci:${target}:out`]);
  assert.is(await layoutTopDigest(target), index.digest);
  for (const image of images) {
    assert.equal(await readFile(join(target, 'blobs', 'sha256', image.digest.slice(7))), image.manifest);
  }
});

test('registry-to-registry copy mounts the blobs and keeps the digest', async () => {
  const image = makeImage();
  const source = await tempDir('wharf-oci-');
  await writeOciLayout(source, 'v1', [image]);
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${source}:v1`, `docker://${host}/docker-local/src/app:1`]);
  await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${host}/docker-local/src/app:1`, `docker://${host}/docker-local/dst/app:1`]);
  const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${host}/docker-local/dst/app:1`])) as { Digest: string };
  assert.is(inspected.Digest, image.digest);
});

test('skopeo delete removes the image', async () => {
  const image = makeImage();
  const source = await tempDir('wharf-oci-');
  await writeOciLayout(source, 'v1', [image]);
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${source}:v1`, `docker://${host}/docker-local/team/gone:1`]);
  await skopeo(['delete', '--tls-verify=false', `docker://${host}/docker-local/team/gone:1`]);
  const response = await fetch(`${server.url}/v2/docker-local/team/gone/manifests/${image.digest}`);
  assert.is(response.status, 404);
  let failed = false;
  await skopeo(['inspect', '--tls-verify=false', `docker://${host}/docker-local/team/gone:1`]).catch(() => { failed = true; });
  assert.ok(failed, 'inspect of a deleted image fails');
});

test.run();
