import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { makeImage, type Image } from '../helpers/images.js';
import { errorCode, pushBlob, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// Moving a tag needs delete (Artifactory's Delete/Overwrite). A deployer without it may create a
// tag, and that holds when another push creates the same tag between the check and the write:
// the hook runs that other push just before the deployer's push is written.

let wharf: TestServer;
let rival: Image | null = null;
const ci = { authorization: basic('ci', 'ci-password-1') };
const ops = { authorization: basic('ops', 'ops-password-1') };

async function pushAll(image: Image, tag: string, headers: Record<string, string>): Promise<Response> {
  for (const item of [image.config, ...image.layers]) await pushBlob(wharf.url, 'docker-local/team/app', item, headers);
  return putManifest(wharf.url, 'docker-local/team/app', tag, image.manifest, undefined, headers);
}

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'ops', password: 'ops-password-1' }],
    permissions: [{ name: 'team', repositories: ['docker-local'], users: { ci: ['read', 'deploy'], ops: ['read', 'deploy', 'delete'] } }],
    hooks: {
      beforePush: async () => {
        const other = rival;
        rival = null; // once: the rival's own push passes here too
        if (other) assert.is((await pushAll(other, 'race', ops)).status, 201, 'the rival push creates the tag');
      },
    },
  });
});
test.after(() => wharf.cleanup());

test('a deployer without delete whose new tag another push creates meanwhile is refused, and the tag stays', async () => {
  const mine = makeImage();
  rival = makeImage();
  const theirs = rival;
  const response = await pushAll(mine, 'race', ci);
  assert.is(response.status, 403, await response.clone().text());
  assert.is(await errorCode(response), 'DENIED');
  const tagged = await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/race`, { method: 'HEAD', headers: ci });
  assert.is(tagged.headers.get('docker-content-digest'), theirs.digest, 'the tag names the rival push');
  assert.is((await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/${mine.digest}`, { method: 'HEAD', headers: ci })).status, 404, 'nothing of the refused push is written');
});

test('the same race for a deployer with delete: the later push moves the tag, as an overwrite may', async () => {
  const mine = makeImage();
  rival = makeImage();
  assert.is((await pushAll(mine, 'race2', ops)).status, 201);
  const tagged = await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/race2`, { method: 'HEAD', headers: ci });
  assert.is(tagged.headers.get('docker-content-digest'), mine.digest);
});

test('a deployer without delete still creates a tag, and pushes the same manifest to it again', async () => {
  const mine = makeImage();
  for (let i = 0; i < 2; i++) assert.is((await pushAll(mine, 'fresh', ci)).status, 201);
  assert.is((await pushAll(makeImage(), 'fresh', ci)).status, 403, 'but does not move it');
});

test.run();
