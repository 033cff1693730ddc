import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { ImageCatalog } from '../../src/repos/catalog.js';
import { withStore } from '../helpers/stored.js';

// README, "Search and the repository list": results come `n` per page, 100 when n is not given,
// with a Link to the next page and `next`, the cursor for `last`. One page reads at most 20,000
// matching tags: a caller who may read few of them gets a short (even empty) page with a next.

let wharf: TestServer;

test.before(async () => {
  wharf = await startWharf({ repositories: { 'docker-local': { type: 'local' } } });
});
test.after(() => wharf.cleanup());

test('without n a search page holds 100 results; the next page, from its cursor, the rest', async () => {
  const image = makeImage({ layers: 1 });
  await pushImage(wharf.url, 'docker-local/team/many', image, 't000');
  const tags = Array.from({ length: 104 }, (_, i) => `t${String(i).padStart(3, '0')}`);
  for (const tag of tags.slice(1)) assert.is((await putManifest(wharf.url, 'docker-local/team/many', tag, image.manifest, OCI_MANIFEST)).status, 201);
  const first = await fetch(`${wharf.url}/api/search/docker?image=team/many`);
  const page = (await first.json()) as { results: { tag: string }[]; next: string | null };
  assert.equal(page.results.map((r) => r.tag), tags.slice(0, 100));
  assert.ok(page.next);
  assert.is(first.headers.get('link'), `</api/search/docker?image=team%2Fmany&last=${page.next}>; rel="next"`);
  const second = await fetch(`${wharf.url}/api/search/docker?image=team/many&last=${page.next}`);
  const rest = (await second.json()) as { results: { tag: string }[]; next: string | null };
  assert.equal(rest.results.map((r) => r.tag), tags.slice(100));
  assert.is(rest.next, null);
  assert.is(second.headers.get('link'), null);
});

test('one page reads at most 20,000 matching tags: a caller who may read only the 20,001st gets an empty page and a next that finds it', async () => {
  const image = makeImage({ layers: 1 });
  await pushImage(wharf.url, 'docker-local/team/scan', image, 't00000');
  // The other 20,000 tags straight into the server's database, in one transaction (pushing them takes minutes).
  await withStore(wharf, { 'docker-local': { type: 'local' } }, async (store) => {
    const tags = Array.from({ length: 20_001 }, (_, i) => `t${String(i).padStart(5, '0')}`);
    const ref = { repo: 'docker-local', name: 'team/scan' };
    await store.metadata.transaction(async (tx) => {
      for (const tag of tags.slice(1)) await tx.tags.set(ref, tag, image.digest, Date.now(), { platformTags: [], maxUniqueTags: 0 });
    });
    // The search API's own reader over the same database; `readable` is the caller's permission check, called once per tag read.
    const catalog = new ImageCatalog(store);
    const query = { repositories: ['docker-local'], image: 'team/scan', after: null };
    for (const n of [100, 333]) {
      let read = 0;
      const first = await catalog.search(query, n, (row) => { read++; return row.tag === tags.at(-1); });
      assert.equal(first.rows, [], `n=${n}: nothing readable in the first 20,000`);
      assert.is(read, 20_000, `n=${n}: tags read for one page`);
      assert.ok(first.resume, `n=${n}: the page has a next`);
      const second = await catalog.search({ ...query, after: first.resume }, n, (row) => row.tag === tags.at(-1));
      assert.equal(second.rows.map((row) => row.tag), [tags.at(-1)]);
      assert.is(second.resume, null);
    }
  });
});

test.run();
