import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { errorCode } from '../helpers/registry.js';
import { cliConfig, runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { skopeo } from '../helpers/skopeo.js';
import { dockerClient, pushWith, type Fetch } from '../helpers/auth.js';

// Permissions on a virtual repository apply where the content is: a read is served only by
// members the caller may read, and a push needs deploy on the deployment repository as well as
// on the virtual repository the client names.

let wharf: TestServer;
let admin: Fetch;
const users = [
  { name: 'local-reader', password: 'local-reader-pw' },
  { name: 'virtual-only', password: 'virtual-only-pw' },
  { name: 'deployer', password: 'deployer-password' },
  { name: 'deletes-local', password: 'deletes-local-pw' },
  { name: 'deletes-virtual', password: 'deletes-virtual-pw' },
  { name: 'deletes-both', password: 'deletes-both-pw' },
  { name: 'root', password: 'root-password', admin: true },
];
const client = (user: string) => dockerClient(wharf.url, { user, password: users.find((u) => u.name === user)!.password });

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    users,
    audit: () => undefined,
    repositories: {
      'docker-local': { type: 'local' },
      'docker-team': { type: 'local' },
      docker: { type: 'virtual', repositories: ['docker-local', 'docker-team'], defaultDeploymentRepo: 'docker-local' },
    },
    permissions: [
      { name: 'virtual', repositories: ['docker'], users: { 'local-reader': ['read'], 'virtual-only': ['deploy'], deployer: ['deploy'], 'deletes-local': ['deploy'], 'deletes-virtual': ['delete'], 'deletes-both': ['delete'] } },
      { name: 'local', repositories: ['docker-local'], users: { 'local-reader': ['read'], deployer: ['deploy'], 'deletes-local': ['delete'], 'deletes-virtual': ['deploy'], 'deletes-both': ['delete'] } },
    ],
  });
  admin = client('root');
  assert.is((await pushWith(admin, 'docker-team/team-only/app', makeImage(), 'v1')).status, 201);
  assert.is((await pushWith(admin, 'docker-local/shared/app', makeImage(), 'v1')).status, 201);
});
test.after(() => wharf.cleanup());

test('a member the caller may not read is passed over: its images are unknown to them, not to an admin', async () => {
  const reader = client('local-reader');
  const hidden = await reader('/v2/docker/team-only/app/manifests/v1', { method: 'GET' });
  assert.is(hidden.status, 404);
  const { errors: [error] } = await hidden.json() as { errors: { code: string; message: string }[] };
  assert.is(error!.code, 'MANIFEST_UNKNOWN');
  assert.match(error!.message, 'is not in the members of docker you may read', 'no claim that members it passed over lack it');
  assert.not.match(error!.message, 'docker-team');
  const absent = await admin('/v2/docker/nowhere/app/manifests/v1');
  assert.match(await absent.text(), 'is in no member of docker', 'every member asked: absent');
  assert.is((await reader('/v2/docker/shared/app/manifests/v1')).status, 200);
  assert.is((await admin('/v2/docker/team-only/app/manifests/v1')).status, 200);
});

test("the virtual repository's catalog lists only images of members the caller may read", async () => {
  const names = (await (await client('local-reader')('/v2/_catalog')).json() as { repositories: string[] }).repositories;
  assert.ok(names.includes('docker/shared/app'));
  assert.not.ok(names.includes('docker/team-only/app'));
  assert.ok((await (await admin('/v2/_catalog')).json() as { repositories: string[] }).repositories.includes('docker/team-only/app'));
});

test('a push through the virtual repository needs deploy on its deployment repository too', async () => {
  const refused = await pushWith(client('virtual-only'), 'docker/ci/app', makeImage(), 'v1');
  assert.is(refused.status, 403);
  assert.is(await errorCode(refused), 'DENIED');
  assert.is((await admin('/v2/docker-local/ci/app/tags/list')).status, 404, 'nothing was stored');
  const image = makeImage();
  assert.is((await pushWith(client('deployer'), 'docker/ci/app', image, 'v1')).status, 201);
  const landed = await admin('/v2/docker-local/ci/app/manifests/v1', { method: 'HEAD' });
  assert.is(landed.headers.get('docker-content-digest'), image.digest);
});

/** An access token of `user`, made with `wharf token create` (the server then knows it). */
async function accessToken(user: string, scope: string): Promise<string> {
  const created = await runCli(['token', 'create', '--user', user, '--scope', scope, '--config', await cliConfig(wharf)]);
  assert.is(created.code, 0, created.stderr);
  await wharf.accountsLoaded();
  return created.stdout.trim();
}

const bearer = (token: string): Fetch => (path, init = {}) => fetch(`${wharf.url}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });

test("an access token's scope applies to the key the request names: scoped to the virtual repository, it reads and pushes through it, with its owner's rights on the members", async () => {
  const token = await accessToken('root', 'repository:docker/**:pull,push');
  const client = bearer(token);
  assert.is((await client('/v2/docker/team-only/app/manifests/v1')).status, 200, 'read through the virtual repository, served by docker-team');
  const image = makeImage();
  assert.is((await pushWith(client, 'docker/tok/app', image, 'v1')).status, 201, 'pushed through it, into docker-local');
  assert.is((await admin('/v2/docker-local/tok/app/manifests/v1', { method: 'HEAD' })).headers.get('docker-content-digest'), image.digest);
  // The same, as a real client logs in with it (a JWT for the virtual repository's scope).
  const layout = join(await tempDir('wharf-virtual-token-'), 'layout');
  await writeOciLayout(layout, 'v1', [makeImage()]);
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `root:${token}`, `oci:${layout}:v1`, `docker://${new URL(wharf.url).host}/docker/tok/skopeo:v1`]);
  assert.is((await admin('/v2/docker-local/tok/skopeo/manifests/v1', { method: 'HEAD' })).status, 200);
  // Nothing on the members' own keys.
  const direct = await client('/v2/docker-local/shared/app/manifests/v1');
  assert.is(direct.status, 403);
  assert.is(await errorCode(direct), 'DENIED');
  // The owner's own rights on the members still apply: local-reader may not read docker-team.
  const reader = bearer(await accessToken('local-reader', 'repository:docker/**:pull'));
  assert.is((await reader('/v2/docker/shared/app/manifests/v1')).status, 200);
  assert.is((await reader('/v2/docker/team-only/app/manifests/v1')).status, 404);
});

test('an access token scoped to a member gains nothing through the virtual repository', async () => {
  const client = bearer(await accessToken('root', 'repository:docker-local/**:pull'));
  assert.is((await client('/v2/docker-local/shared/app/manifests/v1')).status, 200);
  const through = await client('/v2/docker/shared/app/manifests/v1');
  assert.is(through.status, 403);
  assert.is(await errorCode(through), 'DENIED');
});

test('moving a tag through the virtual repository needs what DELETE through it needs: delete on it and on its deployment repository', async () => {
  assert.is((await pushWith(admin, 'docker/moved/app', makeImage(), 'v1')).status, 201);
  for (const user of ['deletes-local', 'deletes-virtual']) {
    const moved = await pushWith(client(user), 'docker/moved/app', makeImage(), 'v1');
    assert.is(moved.status, 403, `${user}: the tag is not moved`);
    assert.is(await errorCode(moved), 'DENIED');
    assert.is((await client(user)('/v2/docker/moved/app/manifests/v1', { method: 'DELETE' })).status, 403, `${user}: nor deleted`);
  }
  const image = makeImage();
  assert.is((await pushWith(client('deletes-both'), 'docker/moved/app', image, 'v1')).status, 201);
  assert.is((await admin('/v2/docker-local/moved/app/manifests/v1', { method: 'HEAD' })).headers.get('docker-content-digest'), image.digest);
  assert.is((await client('deletes-both')('/v2/docker/moved/app/manifests/v1', { method: 'DELETE' })).status, 202);
});

test.run();
