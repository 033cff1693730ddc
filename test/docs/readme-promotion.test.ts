import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { OCI_INDEX } from '../../src/oci/mediatypes.js';
import { makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { promoted, pushMultiArch, pushSignature, tagsOf } from '../helpers/manage.js';
import { runCli, startWharf, type TestServer } from '../helpers/server.js';

// README, "Promotion": referrers go with what is promoted; after a single-tag move the source
// keeps its copies of them until their subject is collected there. The collector's grace is 0,
// so one collection takes the untagged index out of the source. `wharf promote` takes --copy and
// --target-image, and without :TAG promotes every tag. The target's maxUniqueTags applies.

let wharf: TestServer;

test.before(async () => {
  wharf = await startWharf({
    repositories: { 'docker-local': { type: 'local' }, 'docker-prod': { type: 'local' }, 'docker-few': { type: 'local', maxUniqueTags: 2 } },
    gc: { interval: 0, grace: 0 },
  });
});
test.after(() => wharf.cleanup());

const referrers = async (path: string): Promise<string[] | number> => {
  const response = await fetch(`${wharf.url}/v2/${path}`);
  if (response.status !== 200) return response.status;
  return ((await response.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
};

test('after a single-tag move the source keeps the referrers until their subject is collected there', async () => {
  const { index } = await pushMultiArch(wharf.url, 'docker-local/team/signed', 'v1');
  const signature = await pushSignature(wharf.url, 'docker-local/team/signed', index, OCI_INDEX);
  await promoted(wharf.url, 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/signed', tag: 'v1' });
  assert.equal(await tagsOf(wharf.url, 'docker-local/team/signed'), [], 'moved: the source lost the tag');
  assert.equal(await referrers(`docker-prod/team/signed/referrers/${index.digest}`), [signature], 'the target answers the same');
  assert.equal(await referrers(`docker-local/team/signed/referrers/${index.digest}`), [signature], 'the source keeps its copy');
  await wharf.collectGarbage();
  const after = await referrers(`docker-local/team/signed/referrers/${index.digest}`);
  assert.ok(after === 404 || (Array.isArray(after) && after.length === 0), `gone from the source with its subject: ${JSON.stringify(after)}`);
  assert.equal(await referrers(`docker-prod/team/signed/referrers/${index.digest}`), [signature], 'the target keeps them');
});

test('wharf promote --copy --target-image copies every tag of an image when no :TAG is given; the source keeps them', async () => {
  const images = [makeImage({ layers: 1 }), makeImage({ layers: 1 })];
  await pushImage(wharf.url, 'docker-local/team/cli-all', images[0]!, 'a');
  await pushImage(wharf.url, 'docker-local/team/cli-all', images[1]!, 'b');
  const config = `${wharf.dataDir}-promote.yaml`;
  await writeFile(config, JSON.stringify({
    dataDir: wharf.dataDir, storage: wharf.storage, listeners: [{ address: '127.0.0.1', port: 0 }],
    repositories: { 'docker-local': { type: 'local' }, 'docker-prod': { type: 'local' } }, auth: { enabled: false },
  }));
  const copied = await runCli(['promote', 'docker-local', 'team/cli-all', 'docker-prod', '--copy', '--target-image', 'prod/renamed', '--config', config]);
  assert.is(copied.code, 0, copied.stderr);
  assert.equal(await tagsOf(wharf.url, 'docker-prod/prod/renamed'), ['a', 'b']);
  assert.equal(await tagsOf(wharf.url, 'docker-local/team/cli-all'), ['a', 'b'], 'a copy: the source keeps its tags');
});

test("a promotion obeys the target's maxUniqueTags: the oldest tag there goes, and the answer says so", async () => {
  // Pushed in name order: the oldest is also the first by name, whatever the clock's resolution.
  for (const tag of ['a-old', 'b-mid']) await pushImage(wharf.url, 'docker-few/team/few', makeImage({ layers: 1 }), tag);
  await pushImage(wharf.url, 'docker-local/team/few', makeImage({ layers: 1 }), 'c-new');
  const text = await promoted(wharf.url, 'docker-local', { targetRepo: 'docker-few', dockerRepository: 'team/few', tag: 'c-new', copy: true });
  assert.equal(await tagsOf(wharf.url, 'docker-few/team/few'), ['b-mid', 'c-new']);
  assert.match(text, 'maxUniqueTags removed the oldest tag(s) of docker-few/team/few: a-old');
});

test.run();
