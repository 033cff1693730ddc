import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, type Image } from '../helpers/images.js';
import { pushMultiArch, tagDigest, tagsOf } from '../helpers/manage.js';
import { pushImage } from '../helpers/registry.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';

// maxUniqueTags and platformTags, through the real server: the limit drops exactly the oldest
// tags by push time in the push itself (logged, counted in /metrics), their content goes at the
// next collection; platform tags follow their index tag when it is pushed, moved and deleted.
// The store's clock is injected, so push times are distinct and gc.grace can be passed.

let wharf: TestServer;
let clock = Date.now();
const log: string[] = [];
const tick = () => { clock += 1000; };

test.before(async () => {
  wharf = await startWharf({
    storageNow: () => clock,
    log: (line) => log.push(line),
    repositories: {
      'docker-limited': { type: 'local', maxUniqueTags: 3 },
      'docker-platforms': { type: 'local', platformTags: true, maxUniqueTags: 2 },
    },
  });
});
test.after(() => wharf.cleanup());

const base = () => wharf.url;

async function push(name: string, image: Image, tag: string): Promise<void> {
  tick();
  await pushImage(base(), name, image, tag);
}

async function removedCounter(repository: string): Promise<number> {
  const text = await (await fetch(`${base()}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`wharf_tags_removed_total{repository="${repository}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('maxUniqueTags: 3 drops exactly the oldest tags by push time, in the push itself; logged and counted', async () => {
  const images = Array.from({ length: 6 }, () => makeImage());
  const name = 'docker-limited/team/app';
  for (const [i, tag] of ['t1', 't2', 't3'].entries()) await push(name, images[i]!, tag);
  assert.equal(await tagsOf(base(), name), ['t1', 't2', 't3']);
  await push(name, images[3]!, 't4');
  assert.equal(await tagsOf(base(), name), ['t2', 't3', 't4']);
  // Pushing t2 again makes it the newest: t3 is now the oldest.
  await push(name, images[4]!, 't2');
  await push(name, images[5]!, 't5');
  assert.equal(await tagsOf(base(), name), ['t2', 't4', 't5']);
  assert.is(await tagDigest(base(), `${name}/manifests/t2`), images[4]!.digest);
  assert.is(await removedCounter('docker-limited'), 2);
  assert.ok(log.some((line) => line.includes('repositories.docker-limited.maxUniqueTags (3): removed the oldest tag(s) t1 of team/app')), log.join('\n'));
  // Another image has its own count.
  await push('docker-limited/team/other', makeImage(), 'only');
  assert.equal(await tagsOf(base(), name), ['t2', 't4', 't5']);
});

test('tags wharf promote (the CLI, beside the server) removes by maxUniqueTags are counted in the server\'s metric', async () => {
  const name = 'docker-limited/team/cli';
  for (const tag of ['c1', 'c2', 'c3']) await push(name, makeImage(), tag);
  await push('docker-platforms/team/cli', makeImage(), 'promoted');
  const before = await removedCounter('docker-limited');
  const config = await cliConfig(wharf, { 'docker-platforms': { type: 'local' }, 'docker-limited': { type: 'local', maxUniqueTags: 3 } });
  const promoted = await runCli(['promote', 'docker-platforms', 'team/cli:promoted', 'docker-limited', '--copy', '--config', config]);
  assert.is(promoted.code, 0, promoted.stderr);
  assert.match(promoted.stdout, 'removed the oldest tag(s) of docker-limited/team/cli: c1');
  assert.equal(await tagsOf(base(), name), ['c2', 'c3', 'promoted']);
  assert.is(await removedCounter('docker-limited'), before + 1);
});

test('the content of dropped tags goes at the next collection; what tags still reach stays', async () => {
  const name = 'docker-limited/team/gc';
  const images = Array.from({ length: 4 }, () => makeImage());
  for (const [i, image] of images.entries()) await push(name, image, `v${i}`);
  assert.equal(await tagsOf(base(), name), ['v1', 'v2', 'v3']);
  const dropped = [images[0]!.config.digest, ...images[0]!.layers.map((l) => l.digest)];
  const kept = images.slice(1).flatMap((image) => [image.config.digest, ...image.layers.map((l) => l.digest)]);
  const before = new Set(await storedBlobs(wharf));
  assert.ok(dropped.every((digest) => before.has(digest)), 'still stored before the collection');
  clock += 48 * 3_600_000;
  await wharf.collectGarbage();
  const after = new Set(await storedBlobs(wharf));
  assert.ok(dropped.every((digest) => !after.has(digest)), 'the dropped image\'s blobs are collected');
  assert.ok(kept.every((digest) => after.has(digest)), 'the kept tags\' blobs stay');
  assert.is((await fetch(`${base()}/v2/${name}/manifests/${images[0]!.digest}`)).status, 404);
  assert.is((await fetch(`${base()}/v2/${name}/manifests/v3`)).status, 200);
});

test('platformTags: a buildx-style push tags each platform; moving the tag moves them; deleting it deletes them', async () => {
  const name = 'docker-platforms/team/multi';
  tick();
  const first = await pushMultiArch(base(), name, 'v1', { unknownChild: true });
  assert.equal(await tagsOf(base(), name), ['v1', 'v1-linux-amd64', 'v1-linux-arm64-v8'], 'no tag for the unknown/unknown child');
  assert.is(await tagDigest(base(), `${name}/manifests/v1-linux-arm64-v8`), first.images[1]!.digest);
  // Moved: a new index under v1 replaces both platform tags.
  tick();
  const second = await pushMultiArch(base(), name, 'v1');
  assert.is(await tagDigest(base(), `${name}/manifests/v1-linux-amd64`), second.images[0]!.digest);
  assert.is(await tagDigest(base(), `${name}/manifests/v1-linux-arm64-v8`), second.images[1]!.digest);
  // A single-platform image under v1: no platform tags any more.
  tick();
  await pushImage(base(), name, makeImage(), 'v1');
  assert.equal(await tagsOf(base(), name), ['v1']);
  tick();
  await pushMultiArch(base(), name, 'v1');
  assert.is((await fetch(`${base()}/v2/${name}/manifests/v1`, { method: 'DELETE' })).status, 202);
  assert.equal(await tagsOf(base(), name), []);
  // Deleting the index by digest takes its tag and the platform tags.
  tick();
  const third = await pushMultiArch(base(), name, 'v2');
  assert.is((await fetch(`${base()}/v2/${name}/manifests/${third.index.digest}`, { method: 'DELETE' })).status, 202);
  assert.equal(await tagsOf(base(), name), []);
});

test('platform tags do not count toward maxUniqueTags; a tag set directly is a plain tag again', async () => {
  const name = 'docker-platforms/team/limited';
  for (const tag of ['a', 'b', 'c']) {
    tick();
    await pushMultiArch(base(), name, tag);
  }
  assert.equal(await tagsOf(base(), name), ['b', 'b-linux-amd64', 'b-linux-arm64-v8', 'c', 'c-linux-amd64', 'c-linux-arm64-v8']);
  // Pushing straight to a platform tag's name makes it a tag of its own: deleting c leaves it.
  tick();
  const own = makeImage();
  await pushImage(base(), name, own, 'c-linux-amd64');
  assert.is((await fetch(`${base()}/v2/${name}/manifests/c`, { method: 'DELETE' })).status, 202);
  assert.is(await tagDigest(base(), `${name}/manifests/c-linux-amd64`), own.digest);
  assert.is(await tagDigest(base(), `${name}/manifests/c-linux-arm64-v8`), null);
  // An index pushed later under c does not take that tag over: it stays the image pushed to it.
  tick();
  await pushMultiArch(base(), name, 'c');
  assert.is(await tagDigest(base(), `${name}/manifests/c-linux-amd64`), own.digest);
  assert.ok(await tagDigest(base(), `${name}/manifests/c-linux-arm64-v8`), 'the other platform is tagged');
});

test.run();
