import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { errorCode } from '../helpers/registry.js';
import { basic, dockerClient, pushWith } from '../helpers/auth.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { storedBlobs } from '../helpers/stored.js';

// POST /api/system/storage/gc (Artifactory's path): a collection on demand, for admins only.

const hour = 3_600_000;
let wharf: TestServer;
let clock = Date.now();
const users = [{ name: 'root', password: 'root-password', admin: true }, { name: 'dev', password: 'dev-password', groups: [] }];
const as = (user: string) => ({ authorization: basic(user, users.find((u) => u.name === user)!.password) });
const gc = (query: string, headers: Record<string, string> = {}) => fetch(`${wharf.url}/api/system/storage/gc${query}`, { method: 'POST', headers });

test.before(async () => {
  wharf = await startWharf({
    auth: {}, users, audit: () => undefined, storageNow: () => clock,
    permissions: [{ name: 'dev', repositories: ['docker-local'], users: { dev: ['manage'] } }],
  });
});
test.after(() => wharf.cleanup());

test('anonymous callers are challenged and users who are not admins denied, even with manage on every image', async () => {
  const anonymous = await gc('');
  assert.is(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
  const dev = await gc('', as('dev'));
  assert.is(dev.status, 403);
  assert.is(await errorCode(dev), 'DENIED');
});

test('an admin collects: a dry run frees nothing, the real run frees the deleted image, both answer what', async () => {
  const client = dockerClient(wharf.url, { user: 'root', password: 'root-password' });
  const image = makeImage();
  assert.is((await pushWith(client, 'docker-local/team/gone', image, '1')).status, 201);
  assert.is((await client('/v2/docker-local/team/gone/manifests/1', { method: 'DELETE' })).status, 202);
  clock += 2 * hour; // past gc.grace
  const before = await storedBlobs(wharf);
  const dry = await gc('?dryRun=true', as('root'));
  assert.is(dry.status, 200);
  assert.equal(await dry.json(), { dryRun: true, manifests: 1, blobs: 3, bytes: [image.config, ...image.layers].reduce((n, b) => n + b.bytes.length, 0), uploads: 0 });
  assert.equal(await storedBlobs(wharf), before);
  const real = await gc('', as('root'));
  assert.is(real.status, 200);
  assert.is((await real.json() as { blobs: number }).blobs, 3);
  const after = await storedBlobs(wharf);
  for (const item of [image.config, ...image.layers]) assert.not.ok(after.includes(item.digest), `${item.digest} is gone`);
  const bad = await gc('?dryRun=maybe', as('root'));
  assert.is(bad.status, 400);
});

test.run();
