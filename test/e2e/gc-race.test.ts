import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { blob, makeImage, type Blob, type Image } from '../helpers/images.js';
import { putManifest, seedBlob } from '../helpers/registry.js';
import { startWharf, testStorage, type TestServer } from '../helpers/server.js';
import { startDistribution, type Distribution } from '../helpers/upstream.js';

// The collector racing what references old, unreferenced things: each round moves the store's
// clock past gc.grace, then at once deletes a tag, pushes an image that reuses that tag's layer,
// mounts that layer into another image, puts the untagged manifest back under a new tag, pulls
// a blob cold through a remote repository, and collects. A write may be refused (its blobs
// collected first): what was acknowledged must stay whole. 200 rounds on each layout.

const rounds = 200;
const hour = 3_600_000;

interface Tagged {
  name: string;
  tag: string;
  image: Image;
}

async function pushBlobs(base: string, name: string, items: Blob[]): Promise<boolean> {
  for (const item of items) {
    const response = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes });
    await response.arrayBuffer();
    if (response.status !== 201) return false;
  }
  return true;
}

async function whole(base: string, { name, tag, image }: Tagged): Promise<void> {
  const manifest = await fetch(`${base}/v2/${name}/manifests/${tag}`);
  assert.is(manifest.status, 200, `${name}:${tag}`);
  assert.is(digestOf(Buffer.from(await manifest.arrayBuffer())), image.digest);
  for (const item of [image.config, ...image.layers]) {
    const response = await fetch(`${base}/v2/${name}/blobs/${item.digest}`);
    assert.is(response.status, 200, `${item.digest} of ${name}:${tag}`);
    assert.is(digestOf(Buffer.from(await response.arrayBuffer())), item.digest);
  }
}

for (const layout of ['default', 's3-postgres']) {
  const test = suite(`collector racing pushes, mounts, manifest PUTs and cold pulls (${layout})`);
  let wharf: TestServer;
  let origin: Distribution;
  const pool = Array.from({ length: 16 }, () => blob(randomBytes(32 * 1024)));
  let clock = Date.now();
  test.before(async () => {
    origin = await startDistribution();
    for (const item of pool) await seedBlob(origin.url, 'pool', item);
    wharf = await startWharf({
      storage: await testStorage(layout),
      storageNow: () => clock,
      repositories: { 'docker-local': { type: 'local' }, 'docker-remote': { type: 'remote', url: origin.url } },
    });
  });
  test.after(async () => {
    await wharf.cleanup();
    await origin.stop();
  });

  test(`${rounds} rounds lose nothing acknowledged`, async () => {
    const base = wharf.url;
    const live = new Map<string, Tagged>();
    const history: Image[] = [];
    let refused = 0;
    let freed = 0;
    /** Pushes `items` and puts `image` under name:tag; true (and recorded live) when acknowledged. */
    const put = async (name: string, tag: string, image: Image, items: Blob[]): Promise<boolean> => {
      if (!(await pushBlobs(base, name, items))) return false;
      const response = await putManifest(base, name, tag, image.manifest);
      await response.arrayBuffer();
      if (response.status !== 201) return false;
      live.set(`${name}:${tag}`, { name, tag, image });
      return true;
    };
    for (let round = 0; round < rounds; round++) {
      clock += 2 * hour;
      const old = history[round - 2];
      const image = makeImage({ share: [blob(randomBytes(2048)), ...(old ? [old.layers[0]!] : [])] });
      const mounted = old && makeImage({ share: [old.layers[0]!] });
      // What each racing write is, and how a client would push it again once refused (its blobs
      // collected first): the retries run after the collection, in this order, and must succeed.
      // So every round acknowledges the same tags, however the cores interleave the race.
      const push = () => put('docker-local/app', `r${round}`, image, [image.config, ...image.layers]);
      const mount = async () => {
        const response = await fetch(`${base}/v2/docker-local/mounted/blobs/uploads/?mount=${old!.layers[0]!.digest}&from=docker-local/app`, { method: 'POST' });
        await response.arrayBuffer();
        return response.status === 201 && put('docker-local/mounted', `r${round}`, mounted!, [mounted!.config]);
      };
      // The untagged manifest alone, as the race's write; its blobs too, as the retry.
      const back = (items: Blob[]) => put('docker-local/app', `back${round}`, old!, items);
      const writes: { what: string; race: () => Promise<boolean>; retry: () => Promise<boolean> }[] = [{ what: 'push', race: push, retry: push }];
      if (old) writes.push({ what: 'mount', race: mount, retry: mount }, { what: 're-tag', race: () => back([]), retry: () => back([old.config, ...old.layers]) });
      const results = await Promise.all([
        // Delete the tag of two rounds ago: its manifest and layers become garbage...
        old ? fetch(`${base}/v2/docker-local/app/manifests/r${round - 2}`, { method: 'DELETE' }).then((r) => { live.delete(`docker-local/app:r${round - 2}`); return r.arrayBuffer(); }) : null,
        // ...while a push reuses its layer, a mount takes that layer into another image, and the
        // untagged manifest is put back under another tag (each true when acknowledged),
        ...writes.map((write) => write.race()),
        // a blob is pulled cold through the remote repository (and dropped again, for the collector),
        (async () => {
          const item = pool[round % pool.length]!;
          const response = await fetch(`${base}/v2/docker-remote/pool/blobs/${item.digest}`);
          assert.is(response.status, 200);
          assert.is(digestOf(Buffer.from(await response.arrayBuffer())), item.digest, 'a cold pull is whole');
          await (await fetch(`${base}/v2/docker-remote/pool/blobs/${item.digest}`, { method: 'DELETE' })).arrayBuffer();
        })(),
        // and the collector runs.
        wharf.collectGarbage().then((summary) => { freed += summary.blobs; }),
      ]);
      const acknowledged = results.slice(1, 1 + writes.length);
      for (const [i, write] of writes.entries()) {
        if (acknowledged[i]) continue;
        refused++;
        assert.ok(await write.retry(), `round ${round}: the ${write.what} pushed again after the collection`);
      }
      history.push(image);
    }
    clock += 2 * hour;
    freed += (await wharf.collectGarbage()).blobs;
    assert.ok(freed > rounds / 4, `the collector freed bytes all along (${freed} blobs)`);
    // By construction, however many the race refused: the last two rounds' pushes (earlier ones
    // are deleted two rounds on), and from the third round on each round's mount and re-tag.
    assert.is(live.size, 2 + 2 * (rounds - 2), `tags live (${refused} writes refused in the race)`);
    for (const tagged of live.values()) await whole(base, tagged);
  });

  test.run();
}

