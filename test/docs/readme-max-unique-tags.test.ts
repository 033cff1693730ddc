import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { tagsOf } from '../helpers/manage.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// README, "Max unique tags": beyond N tags the oldest by push time, then by name, are removed;
// the tag just pushed never is. The store's clock stands still, so every push has the same time
// and only the name decides.

let wharf: TestServer;
const pushedAt = Date.UTC(2026, 0, 1);

test.before(async () => {
  wharf = await startWharf({ repositories: { 'docker-limited': { type: 'local', maxUniqueTags: 2 } }, storageNow: () => pushedAt, log: () => {} });
});
test.after(() => wharf.cleanup());

test('pushed at the same time, the tags go by name; the tag just pushed stays though its name comes first', async () => {
  const name = 'docker-limited/team/app';
  for (const tag of ['n', 'm']) await pushImage(wharf.url, name, makeImage({ layers: 1 }), tag);
  assert.equal(await tagsOf(wharf.url, name), ['m', 'n']);
  await pushImage(wharf.url, name, makeImage({ layers: 1 }), 'a');
  assert.equal(await tagsOf(wharf.url, name), ['a', 'n'], 'm went: the first by name among the others');
});

test.run();
