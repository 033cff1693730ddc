import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic, challengeOf, fetchToken } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { promote, tagDigest, tagsOf } from '../helpers/manage.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';

// Who may promote (the lead's rule): read on the source and deploy on the target; a move also
// needs delete on the source; overwriting a target tag that names another manifest needs delete
// on the target. Each refusal changes nothing. The management API takes Basic credentials or an
// access token, never a registry bearer JWT, and challenges anonymous callers with Basic.

let wharf: TestServer;
const password = (user: string) => `${user}-password-1`;
const as = (user: string) => ({ authorization: basic(user, password(user)) });
const users = ['reader', 'deployer', 'mover', 'overwriter', 'root'];

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    repositories: { 'docker-local': { type: 'local' }, 'docker-prod': { type: 'local' }, 'docker-secret': { type: 'local' } },
    users: users.map((name) => ({ name, password: password(name), admin: name === 'root' })),
    permissions: [
      { name: 'stage', repositories: ['docker-local'], users: { reader: ['read'], deployer: ['read'], mover: ['delete'], overwriter: ['delete'] } },
      { name: 'prod', repositories: ['docker-prod'], users: { reader: ['read'], deployer: ['deploy'], mover: ['deploy'], overwriter: ['delete'] } },
    ],
  });
});
test.after(() => wharf.cleanup());

const base = () => wharf.url;

async function seed(name: string, tag: string) {
  const image = makeImage();
  await seedImage(base(), `docker-local/${name}`, image, tag, as('root'));
  return image;
}

async function denied(response: Response, pattern: string): Promise<void> {
  assert.is(response.status, 403);
  const body = (await response.json()) as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, pattern);
}

test('anonymous callers and registry bearer tokens get a Basic challenge; nothing moves', async () => {
  await seed('team/anon', '1');
  const anonymous = await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/anon', tag: '1', copy: true });
  assert.is(anonymous.status, 401);
  assert.is(anonymous.headers.get('www-authenticate'), 'Basic realm="wharf"');
  const probe = await fetch(`${base()}/v2/docker-local/team/anon/manifests/1`);
  const { token } = await fetchToken(challengeOf(probe).realm, 'wharf', { credentials: { user: 'deployer', password: password('deployer') }, scopes: ['repository:docker-local/team/anon:pull'] });
  const jwt = await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/anon', tag: '1', copy: true }, { authorization: `Bearer ${token}` });
  assert.is(jwt.status, 401);
  assert.is(jwt.headers.get('www-authenticate'), 'Basic realm="wharf"');
  assert.match(((await jwt.json()) as { errors: { message: string }[] }).errors[0]!.message, 'not a registry bearer token');
  assert.is(await tagDigest(base(), 'docker-prod/team/anon/manifests/1', as('root')), null);
});

test('read on the source alone is not enough: deploy on the target is needed', async () => {
  await seed('team/read', '1');
  await denied(await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/read', tag: '1', copy: true }, as('reader')), 'reader may not deploy docker-prod/team/read');
  assert.equal(await tagsOf(base(), 'docker-prod/team/read', as('root')), []);
});

test('read + deploy copies; a move also needs delete on the source', async () => {
  const image = await seed('team/copy', '1');
  await denied(await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/copy', tag: '1' }, as('deployer')), 'deployer may not delete docker-local/team/copy (a move takes the tags from the source');
  assert.is(await tagDigest(base(), 'docker-local/team/copy/manifests/1', as('root')), image.digest, 'the refused move changed nothing');
  assert.is(await tagDigest(base(), 'docker-prod/team/copy/manifests/1', as('root')), null);
  assert.is((await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/copy', tag: '1', copy: true }, as('deployer'))).status, 200);
  assert.is(await tagDigest(base(), 'docker-prod/team/copy/manifests/1', as('root')), image.digest);
  // Pushing the same image to the tag again is no overwrite (deploy is enough), and no download.
  await seedImage(base(), 'docker-prod/team/copy', image, '1', as('deployer'));
  const info = (await (await fetch(`${base()}/api/docker/docker-prod/info/team/copy/1`, { headers: as('root') })).json()) as { downloadCount: number };
  assert.is(info.downloadCount, 0);
  const moved = await seed('team/move', '1');
  assert.is((await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/move', tag: '1' }, as('mover'))).status, 200);
  assert.is(await tagDigest(base(), 'docker-prod/team/move/manifests/1', as('root')), moved.digest);
  assert.is(await tagDigest(base(), 'docker-local/team/move/manifests/1', as('root')), null);
});

test('overwriting a target tag that names another manifest needs delete on the target: 403 naming the tag, nothing changes', async () => {
  const old = makeImage();
  await seedImage(base(), 'docker-prod/team/over', old, 'latest', as('root'));
  const next = await seed('team/over', 'latest');
  const refused = await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/over', tag: 'latest', copy: true }, as('deployer'));
  await denied(refused, `deployer may not delete docker-prod/team/over (tag latest points to ${old.digest}; overwriting it needs delete)`);
  assert.is(await tagDigest(base(), 'docker-prod/team/over/manifests/latest', as('root')), old.digest);
  // The same digest is no overwrite: a deployer may promote it again.
  await seedImage(base(), 'docker-prod/team/same', next, 'latest', as('root'));
  await seedImage(base(), 'docker-local/team/same', next, 'latest', as('root'));
  assert.is((await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/same', tag: 'latest', copy: true }, as('deployer'))).status, 200);
  assert.is((await promote(base(), 'docker-local', { targetRepo: 'docker-prod', dockerRepository: 'team/over', tag: 'latest', copy: true }, as('overwriter'))).status, 200);
  assert.is(await tagDigest(base(), 'docker-prod/team/over/manifests/latest', as('root')), next.digest);
});

test('repositories the caller cannot see are unknown to them; an admin may do everything', async () => {
  await seed('team/secret', '1');
  const hidden = await promote(base(), 'docker-local', { targetRepo: 'docker-secret', dockerRepository: 'team/secret', tag: '1', copy: true }, as('deployer'));
  assert.is(hidden.status, 404);
  assert.is(await errorCode(hidden), 'NAME_UNKNOWN');
  assert.is((await promote(base(), 'docker-local', { targetRepo: 'docker-secret', dockerRepository: 'team/secret', tag: '1' }, as('root'))).status, 200);
  assert.equal(await tagsOf(base(), 'docker-secret/team/secret', as('root')), ['1']);
});

test('an access token works as a bearer credential and as a Basic password, with its owner\'s rights', async () => {
  const created = await runCli(['token', 'create', '--user', 'deployer', '--config', await cliConfig(wharf)]);
  assert.is(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  const image = await seed('team/token', '1');
  const body = { targetRepo: 'docker-prod', dockerRepository: 'team/token', tag: '1', copy: true };
  await wharf.accountsLoaded();
  assert.is((await promote(base(), 'docker-local', body, { authorization: `Bearer ${token}` })).status, 200, 'the server knows the new token');
  assert.is(await tagDigest(base(), 'docker-prod/team/token/manifests/1', as('root')), image.digest);
  await denied(await promote(base(), 'docker-local', { ...body, copy: false }, { authorization: basic('deployer', token) }), 'may not delete docker-local/team/token');
});

test.run();
