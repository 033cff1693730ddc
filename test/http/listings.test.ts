import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { errorCode, pushImage, putManifest } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string;

test.before(async () => {
  server = await startWharf({ repositories: { 'docker-local': { type: 'local' }, 'docker-prod': { type: 'local' } } });
  base = server.url;
  const image = makeImage();
  await pushImage(base, 'docker-local/team/app', image, 'a1');
  for (const tag of ['b2', 'c3', 'd4', 'e5']) assert.is((await putManifest(base, 'docker-local/team/app', tag, image.manifest)).status, 201);
  for (const image_ of ['alpha', 'beta', 'gamma']) await pushImage(base, `docker-local/${image_}`, makeImage(), 'v1');
  await pushImage(base, 'docker-prod/zeta', makeImage(), 'v1');
});
test.after(async () => server.cleanup());

test('tags/list returns every tag in lexical order', async () => {
  const response = await fetch(`${base}/v2/docker-local/team/app/tags/list`);
  assert.equal(await response.json(), { name: 'docker-local/team/app', tags: ['a1', 'b2', 'c3', 'd4', 'e5'] });
  assert.is(response.headers.get('link'), null);
});

test('tags/list paginates with n and last and a Link header to the next page', async () => {
  const first = await fetch(`${base}/v2/docker-local/team/app/tags/list?n=2`);
  assert.equal((await first.json() as { tags: string[] }).tags, ['a1', 'b2']);
  assert.is(first.headers.get('link'), '</v2/docker-local/team/app/tags/list?n=2&last=b2>; rel="next"');
  const second = await fetch(`${base}/v2/docker-local/team/app/tags/list?n=2&last=b2`);
  assert.equal((await second.json() as { tags: string[] }).tags, ['c3', 'd4']);
  const third = await fetch(`${base}/v2/docker-local/team/app/tags/list?n=2&last=d4`);
  assert.equal((await third.json() as { tags: string[] }).tags, ['e5']);
  assert.is(third.headers.get('link'), null);
  const invalid = await fetch(`${base}/v2/docker-local/team/app/tags/list?n=-1`);
  assert.is(invalid.status, 400);
});

test('tags/list of an unknown image is NAME_UNKNOWN', async () => {
  const response = await fetch(`${base}/v2/docker-local/nothing/tags/list`);
  assert.is(response.status, 404);
  assert.is(await errorCode(response), 'NAME_UNKNOWN');
});

test('_catalog lists images of every repository, prefixed by key, paginated across repositories', async () => {
  const all = await fetch(`${base}/v2/_catalog`);
  assert.equal(await all.json(), { repositories: ['docker-local/alpha', 'docker-local/beta', 'docker-local/gamma', 'docker-local/team/app', 'docker-prod/zeta'] });
  const first = await fetch(`${base}/v2/_catalog?n=4`);
  assert.equal((await first.json() as { repositories: string[] }).repositories, ['docker-local/alpha', 'docker-local/beta', 'docker-local/gamma', 'docker-local/team/app']);
  assert.is(first.headers.get('link'), '</v2/_catalog?n=4&last=docker-local%2Fteam%2Fapp>; rel="next"');
  const second = await fetch(`${base}/v2/_catalog?n=4&last=docker-local%2Fteam%2Fapp`);
  assert.equal((await second.json() as { repositories: string[] }).repositories, ['docker-prod/zeta']);
  assert.is(second.headers.get('link'), null);
});

test('the Artifactory prefix /api/docker/<key>/v2/ reaches one repository with names inside it', async () => {
  const catalog = await fetch(`${base}/api/docker/docker-prod/v2/_catalog`);
  assert.equal(await catalog.json(), { repositories: ['zeta'] });
  const tags = await fetch(`${base}/api/docker/docker-local/v2/team/app/tags/list?n=1`);
  assert.equal(await tags.json(), { name: 'team/app', tags: ['a1'] });
  assert.is(tags.headers.get('link'), '</api/docker/docker-local/v2/team/app/tags/list?n=1&last=a1>; rel="next"');
  const upload = await fetch(`${base}/api/docker/docker-local/v2/team/app/blobs/uploads/`, { method: 'POST' });
  assert.match(upload.headers.get('location')!, /^\/api\/docker\/docker-local\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]{36}$/);
  const base2 = await fetch(`${base}/api/docker/docker-local/v2/`);
  assert.is(base2.status, 200);
});

test('GET /v2/ answers 200 with the API version header; unknown keys name the configured ones', async () => {
  const response = await fetch(`${base}/v2/`);
  assert.is(response.status, 200);
  assert.is(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
  const unknown = await fetch(`${base}/v2/docker-nope/app/manifests/latest`);
  assert.is(unknown.status, 404);
  const body = await unknown.json() as { errors: { code: string; message: string }[] };
  assert.is(body.errors[0]!.code, 'NAME_UNKNOWN');
  assert.match(body.errors[0]!.message, 'docker-local, docker-prod');
  const viaApi = await fetch(`${base}/api/docker/docker-nope/v2/app/tags/list`);
  assert.is(await errorCode(viaApi), 'NAME_UNKNOWN');
});

test('bad names and methods get spec errors, never a file outside the data directory', async () => {
  for (const path of ['/v2/docker-local/..%2F..%2Fmeta.db/manifests/x', '/v2/docker-local/Team/manifests/x', '/v2/docker-local/a%zz/manifests/x']) {
    const response = await fetch(`${base}${path}`);
    assert.is(response.status, 400, path);
    assert.is(await errorCode(response), 'NAME_INVALID');
  }
  const method = await fetch(`${base}/v2/docker-local/team/app/tags/list`, { method: 'POST' });
  assert.is(method.status, 405);
  assert.is(method.headers.get('allow'), 'GET');
  assert.is(await errorCode(method), 'UNSUPPORTED');
  const elsewhere = await fetch(`${base}/index.html`);
  assert.is(elsewhere.status, 404);
  assert.is(await errorCode(elsewhere), 'NAME_UNKNOWN');
});

test.run();
