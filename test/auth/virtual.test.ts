import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { errorCode } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
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
      { name: 'virtual', repositories: ['docker'], users: { 'local-reader': ['read'], 'virtual-only': ['deploy'], deployer: ['deploy'] } },
      { name: 'local', repositories: ['docker-local'], users: { 'local-reader': ['read'], deployer: ['deploy'] } },
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
  assert.is(await errorCode(hidden), 'MANIFEST_UNKNOWN');
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

test.run();
