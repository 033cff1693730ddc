import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// DELETE /artifactory/<repoKey>/<image>[/<tag>] is authorized like the registry's own DELETE:
// the delete action on the image it names.

let wharf: TestServer;
const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${user}-password-1`).toString('base64')}` });

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    users: [{ name: 'ci', password: 'ci-password-1' }, { name: 'ops', password: 'ops-password-1' }],
    permissions: [{ name: 'team', repositories: ['docker-local'], users: { ci: ['deploy'], ops: ['delete'] } }],
  });
});
test.after(() => wharf.cleanup());

test('anonymous callers are challenged, a deployer is denied, a deleter deletes a tag and then the image', async () => {
  const image = makeImage();
  await seedImage(wharf.url, 'docker-local/team/app', image, '1', basic('ci'));
  await seedImage(wharf.url, 'docker-local/team/app', image, '2', basic('ci'));
  const anonymous = await fetch(`${wharf.url}/artifactory/docker-local/team/app/1`, { method: 'DELETE' });
  assert.is(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', 'repository:docker-local/team/app:delete');
  const deployer = await fetch(`${wharf.url}/artifactory/docker-local/team/app/1`, { method: 'DELETE', headers: basic('ci') });
  assert.is(deployer.status, 403);
  assert.is(((await deployer.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DENIED');
  assert.is((await fetch(`${wharf.url}/artifactory/docker-local/team/app`, { method: 'DELETE', headers: basic('ci') })).status, 403, 'nor the whole image');
  assert.is((await fetch(`${wharf.url}/artifactory/docker-local/team/app/1`, { method: 'DELETE', headers: basic('ops') })).status, 204);
  const tags = (await (await fetch(`${wharf.url}/v2/docker-local/team/app/tags/list`, { headers: basic('ci') })).json()) as { tags: string[] };
  assert.equal(tags.tags, ['2']);
  assert.is((await fetch(`${wharf.url}/artifactory/docker-local/team/app`, { method: 'DELETE', headers: basic('ops') })).status, 204);
  assert.is((await fetch(`${wharf.url}/v2/docker-local/team/app/manifests/2`, { headers: basic('ci') })).status, 404);
});

test('a denial names the item as the path names it, not the image before its last segment', async () => {
  const denied = await fetch(`${wharf.url}/artifactory/docker-local/pg/img`, { method: 'DELETE', headers: basic('ci') });
  assert.is(denied.status, 403);
  assert.is(((await denied.json()) as { errors: { message: string }[] }).errors[0]!.message, 'ci may not delete docker-local/pg/img');
});

test('a tag with upper case and underscores is deleted; a path that is a valid image name is the image first', async () => {
  const image = makeImage();
  for (const tag of ['Latest', 'v1_2', 'keep']) await seedImage(wharf.url, 'docker-local/team/cased', image, tag, basic('ci'));
  await seedImage(wharf.url, 'docker-local/team/cased/keep', makeImage(), '1', basic('ci'));
  const tags = async (name: string) => ((await (await fetch(`${wharf.url}/v2/docker-local/${name}/tags/list`, { headers: basic('ci') })).json()) as { tags: string[] }).tags;
  for (const tag of ['Latest', 'v1_2']) {
    const response = await fetch(`${wharf.url}/artifactory/docker-local/team/cased/${tag}`, { method: 'DELETE', headers: basic('ops') });
    assert.is(response.status, 204, `${tag}: ${await response.text()}`);
  }
  assert.equal(await tags('team/cased'), ['keep']);
  // team/cased/keep is an image as well as a tag of team/cased: the image goes, the tag stays.
  assert.is((await fetch(`${wharf.url}/artifactory/docker-local/team/cased/keep`, { method: 'DELETE', headers: basic('ops') })).status, 204);
  assert.is((await fetch(`${wharf.url}/v2/docker-local/team/cased/keep/manifests/1`, { headers: basic('ci') })).status, 404);
  assert.equal(await tags('team/cased'), ['keep']);
  assert.is((await fetch(`${wharf.url}/artifactory/docker-local/team/cased/keep`, { method: 'DELETE', headers: basic('ops') })).status, 204, 'then the tag');
  assert.is((await fetch(`${wharf.url}/v2/docker-local/team/cased/manifests/keep`, { headers: basic('ci') })).status, 404);
  const invalid = await fetch(`${wharf.url}/artifactory/docker-local/Team/cased/Latest`, { method: 'DELETE', headers: basic('ops') });
  assert.is(invalid.status, 400, 'an image name stays lower case');
  assert.is(((await invalid.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NAME_INVALID');
});

test.run();
