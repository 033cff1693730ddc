import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, type Image } from '../helpers/images.js';
import { errorCode, seedImage } from '../helpers/registry.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';
import { basic, dockerClient, fetchToken, pushWith } from '../helpers/auth.js';

// A cross-repository mount reads its source as every read does: a virtual source only through the
// members the caller may read, a remote member fetching from its upstream only for callers who
// may fill its cache. Otherwise the mount is a plain upload session (202) that reveals nothing.

let wharf: TestServer;
let distribution: Distribution;
let upstream: CountingProxy;
const secret = makeImage({ layers: 1 });
const shared = makeImage({ layers: 1 });
const remote = makeImage({ layers: 1 });
const remoteCached = makeImage({ layers: 1 });
const remoteFetched = makeImage({ layers: 1 });
const alice = { user: 'alice', password: 'alice-password' };
const bob = { user: 'bob', password: 'bob-password' };
const carol = { user: 'carol', password: 'carol-password' };
const admin = { user: 'root', password: 'root-password' };

test.before(async () => {
  distribution = await startDistribution();
  upstream = await startCountingProxy(distribution.url);
  await seedImage(distribution.url, 'up/img', remote, 'v1');
  await seedImage(distribution.url, 'up/cached', remoteCached, 'v1');
  await seedImage(distribution.url, 'up/fetched', remoteFetched, 'v1');
  wharf = await startWharf({
    auth: {},
    audit: () => undefined,
    users: [{ name: 'alice', password: alice.password }, { name: 'bob', password: bob.password }, { name: 'carol', password: carol.password }, { name: 'root', password: 'root-password', admin: true }],
    repositories: {
      'docker-local': { type: 'local' },
      'secret-local': { type: 'local' },
      hub: { type: 'remote', url: upstream.url },
      docker: { type: 'virtual', repositories: ['docker-local', 'secret-local', 'hub'], defaultDeploymentRepo: 'docker-local' },
    },
    permissions: [
      { name: 'alice', repositories: ['docker-local', 'docker'], users: { alice: ['deploy'], carol: ['deploy'] } },
      { name: 'carol', repositories: ['hub'], users: { carol: ['read'] } },
      { name: 'bob', repositories: ['docker-local', 'docker', 'hub'], users: { bob: ['deploy'] } },
    ],
  });
  const root = dockerClient(wharf.url, { user: 'root', password: 'root-password' });
  assert.is((await pushWith(root, 'secret-local/secret/img', secret, 'v1')).status, 201);
  assert.is((await pushWith(root, 'docker-local/shared/img', shared, 'v1')).status, 201);
  upstream.reset();
});
test.after(async () => {
  await wharf.cleanup();
  await upstream.stop();
  await distribution.stop();
});

const mountPath = (target: string, image: Image, from: string) => `/v2/docker-local/${target}/blobs/uploads/?mount=${image.layers[0]!.digest}&from=${from}`;

async function mountWithBasic(credentials: { user: string; password: string }, target: string, image: Image, from: string): Promise<Response> {
  return fetch(`${wharf.url}${mountPath(target, image, from)}`, { method: 'POST', headers: { authorization: basic(credentials.user, credentials.password) } });
}

/** As docker does it: one token for the target (pull,push) and the source (pull), then the POST. */
async function mountWithBearer(credentials: { user: string; password: string }, target: string, image: Image, from: string): Promise<Response> {
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials, scopes: [`repository:docker-local/${target}:pull,push`, `repository:${from}:pull`] });
  return fetch(`${wharf.url}${mountPath(target, image, from)}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
}

const blobStatus = async (target: string, image: Image) =>
  (await fetch(`${wharf.url}/v2/docker-local/${target}/blobs/${image.layers[0]!.digest}`, { headers: { authorization: basic('root', 'root-password') } })).status;

test('through a virtual source, a member the caller may not read is no source: 202, and nothing is linked', async () => {
  for (const [how, mount] of [['Basic', mountWithBasic], ['a bearer JWT', mountWithBearer]] as const) {
    const target = `team/${how === 'Basic' ? 'basic' : 'jwt'}`;
    const refused = await mount(alice, target, secret, 'docker/secret/img');
    assert.is(refused.status, 202, `${how}: a plain upload session, not a mount`);
    assert.is(await blobStatus(target, secret), 404, `${how}: the secret layer is not in alice's image`);
    const mounted = await mount(alice, target, shared, 'docker/shared/img');
    assert.is(mounted.status, 201, `${how}: a member alice may read mounts`);
    assert.is(await blobStatus(target, shared), 200);
  }
});

test("a remote member is asked of its upstream only for callers who may fill its cache", async () => {
  const refused = await mountWithBasic(alice, 'team/remote', remote, 'docker/up/img');
  assert.is(refused.status, 202);
  assert.equal(upstream.counts, {}, 'alice may not read hub: its upstream is never asked');
  const mounted = await mountWithBasic(bob, 'team/remote', remote, 'docker/up/img');
  assert.ok(Object.keys(upstream.counts).length > 0, 'bob may fill the cache: the upstream is asked');
  assert.is(mounted.status, 201, 'fetched through the remote member (verified, committed), then linked');
  assert.is(await blobStatus('team/remote', remote), 200);
});

/** A manifest PUT through the virtual repository, its blobs uploaded nowhere (as a client that a blob HEAD told they are there). */
const putThroughVirtual = (credentials: { user: string; password: string }, name: string, image: Image) =>
  fetch(`${wharf.url}/v2/docker/${name}/manifests/mine`, { method: 'PUT', body: image.manifest, headers: { 'content-type': OCI_MANIFEST, authorization: basic(credentials.user, credentials.password) } });

test('a manifest pushed through the virtual repository takes only blobs of members the caller may read, as a mount does', async () => {
  upstream.reset();
  const refused = await putThroughVirtual(alice, 'secret/img', secret);
  assert.is(refused.status, 400);
  assert.is(await errorCode(refused), 'MANIFEST_BLOB_UNKNOWN', 'alice may not read secret-local: its blobs are not hers to link');
  assert.is(await blobStatus('secret/img', secret), 404, 'nothing was linked');
  assert.is((await putThroughVirtual(admin, 'secret/img', secret)).status, 201, 'an admin reads secret-local');
  assert.is(await blobStatus('secret/img', secret), 200);
  for (const who of [alice, carol]) {
    const notFetched = await putThroughVirtual(who, 'up/cached', remoteCached);
    assert.is(await errorCode(notFetched), 'MANIFEST_BLOB_UNKNOWN', `${who.user}: nothing cached, and may not fill hub's cache`);
  }
  assert.equal(upstream.counts, {}, 'so its upstream is never asked');
  // Cached by someone who may fill it (an admin's mount answers once hub has stored the blob):
  // carol, who may read hub, takes what it holds.
  for (const item of [remoteCached.config, ...remoteCached.layers]) {
    const mounted = await fetch(`${wharf.url}/v2/docker-local/warm/blobs/uploads/?mount=${item.digest}&from=hub/up/cached`, { method: 'POST', headers: { authorization: basic(admin.user, admin.password) } });
    assert.is(mounted.status, 201);
  }
  upstream.reset();
  assert.is((await putThroughVirtual(carol, 'up/cached', remoteCached)).status, 201);
  assert.equal(upstream.counts, {}, 'from the cache alone');
  assert.is(await blobStatus('up/cached', remoteCached), 200);
  assert.is((await putThroughVirtual(bob, 'up/fetched', remoteFetched)).status, 201, 'bob may fill hub\'s cache: fetched, then linked');
  const layer = await fetch(`${wharf.url}/v2/docker-local/up/fetched/blobs/${remoteFetched.layers[0]!.digest}`, { headers: { authorization: basic(admin.user, admin.password) } });
  assert.equal(Buffer.from(await layer.arrayBuffer()), remoteFetched.layers[0]!.bytes);
});

/** The scope parameter of a 401's challenge, split into its scopes. */
const challengedScopes = (response: Response) => /scope="([^"]*)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1]!.split(' ');

test('a mount\'s challenge asks for its source too (pull), named as the route names images; a client asking for just that mounts', async () => {
  const post = (path: string, headers: Record<string, string> = {}) => fetch(`${wharf.url}${path}`, { method: 'POST', headers });
  const anonymous = await post(mountPath('team/challenged', shared, 'docker-local/shared/img'));
  assert.is(anonymous.status, 401);
  assert.equal(challengedScopes(anonymous), ['repository:docker-local/team/challenged:pull,push', 'repository:docker-local/shared/img:pull']);
  const prefixed = await post(`/api/docker/docker-local/v2/team/challenged/blobs/uploads/?mount=${shared.layers[0]!.digest}&from=shared/img`);
  assert.equal(challengedScopes(prefixed), ['repository:team/challenged:pull,push', 'repository:shared/img:pull'], 'on a prefix, as its token endpoint reads names');
  for (const from of ['Bad/Name', 'docker-local/a%20b', 'UPPER/x', 'noslash']) {
    assert.equal(challengedScopes(await post(mountPath('team/challenged', shared, from))), ['repository:docker-local/team/challenged:pull,push'], `${from}: no valid name, not asked for`);
  }
  assert.equal(challengedScopes(await post('/v2/docker-local/team/challenged/blobs/uploads/?from=docker-local/shared/img')), ['repository:docker-local/team/challenged:pull,push'], 'no mount, no source');

  // A token for another image: insufficient_scope, naming both.
  const other = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials: alice, scopes: ['repository:docker-local/team/other:pull,push'] });
  const insufficient = await post(mountPath('team/challenged', shared, 'docker-local/shared/img'), { authorization: `Bearer ${other.token}` });
  assert.is(insufficient.status, 401);
  assert.match(insufficient.headers.get('www-authenticate')!, 'error="insufficient_scope"');
  const scopes = challengedScopes(insufficient)!;
  assert.equal(scopes, ['repository:docker-local/team/challenged:pull,push', 'repository:docker-local/shared/img:pull']);
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials: alice, scopes });
  const mounted = await post(mountPath('team/challenged', shared, 'docker-local/shared/img'), { authorization: `Bearer ${token}` });
  assert.is(mounted.status, 201, 'the token the challenge asked for mounts: no whole upload');
});

test('a mount without `from` is limited by a bearer JWT\'s grants: a token for one image links nothing from another image of the repository (202, a plain upload)', async () => {
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials: admin, scopes: ['repository:docker-local/team/nofrom:pull,push'] });
  const path = (target: string) => `/v2/docker-local/${target}/blobs/uploads/?mount=${shared.layers[0]!.digest}`;
  const refused = await fetch(`${wharf.url}${path('team/nofrom')}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.is(refused.status, 202, 'the JWT grants one image, not every image of docker-local');
  assert.is(await blobStatus('team/nofrom', shared), 404, 'nothing linked');
  const basicMount = await fetch(`${wharf.url}${path('team/nofrom-basic')}`, { method: 'POST', headers: { authorization: basic(admin.user, admin.password) } });
  assert.is(basicMount.status, 201, 'the admin\'s password reads every image: mounted');
});

test.run();
