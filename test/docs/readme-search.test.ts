import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// README, "Search and the repository list": results come `n` per page, 100 when n is not given,
// with a Link to the next page and `next`, the cursor for `last`.

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

test.run();
