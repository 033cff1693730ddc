import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, makeImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// On a mirror listener the ns parameter chooses the repository: every Location and Link a request
// with ns answers carries it, so that the next request reaches the same repository (without it,
// docker.io's). docker.io maps to a remote whose upstream is down, where a write is refused.

let wharf: TestServer;
let mirror: string;
const ns = 'ns=ghcr.io';

test.before(async () => {
  wharf = await startWharf({
    repositories: {
      'docker-hub': { type: 'remote', url: `http://127.0.0.1:${await freePort()}` },
      'ghcr-remote': { type: 'remote', url: `http://127.0.0.1:${await freePort()}` },
      'team-local': { type: 'local' },
      ghcr: { type: 'virtual', repositories: ['team-local', 'ghcr-remote'], defaultDeploymentRepo: 'team-local' },
    },
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, mirrors: { 'docker.io': 'docker-hub', 'ghcr.io': 'ghcr' } }],
    log: () => undefined,
  });
  mirror = wharf.urls[1]!;
});
test.after(() => wharf.cleanup());

/** The answer's `header` (asserting it keeps the ns), as a URL on the mirror. */
function followed(response: Response, header: 'location' | 'link'): URL {
  const value = response.headers.get(header) ?? '';
  const url = header === 'link' ? /^<([^>]+)>; rel="next"$/.exec(value)?.[1] ?? '' : value;
  assert.match(url, ns, `${header} keeps the ns: ${value}`);
  return new URL(url, mirror);
}

test('a chunked push through the mirror: each Location keeps the ns, and the blob lands where the ns points', async () => {
  const item = blob(Buffer.from('a chunked layer, pushed through the mirror'));
  const started = await fetch(`${mirror}/v2/team/app/blobs/uploads/?${ns}`, { method: 'POST' });
  assert.is(started.status, 202);
  const patched = await fetch(followed(started, 'location'), { method: 'PATCH', body: item.bytes, headers: { 'Content-Range': `0-${item.bytes.length - 1}` } });
  assert.is(patched.status, 202, await patched.clone().text());
  const status = await fetch(followed(patched, 'location'));
  assert.is(status.status, 204);
  const finish = followed(status, 'location');
  finish.searchParams.set('digest', item.digest);
  const done = await fetch(finish, { method: 'PUT' });
  assert.is(done.status, 201, await done.clone().text());
  assert.is((await fetch(followed(done, 'location'))).status, 200);
  const monolithic = await fetch(`${mirror}/v2/team/app/blobs/uploads/?${ns}&digest=${item.digest}`, { method: 'POST', body: item.bytes });
  assert.is(monolithic.status, 201);
  assert.is((await fetch(followed(monolithic, 'location'))).status, 200);
  assert.is((await fetch(`${wharf.url}/v2/team-local/team/app/blobs/${item.digest}`)).status, 200, 'in the deployment repository');
});

test('a manifest pushed through the mirror: its Location keeps the ns', async () => {
  const image = makeImage();
  await pushImage(wharf.url, 'team-local/team/pushed', image, 'base');
  const put = await fetch(`${mirror}/v2/team/pushed/manifests/1?${ns}`, { method: 'PUT', body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.is(put.status, 201, await put.clone().text());
  const got = await fetch(followed(put, 'location'));
  assert.is(got.status, 200);
  assert.is(got.headers.get('docker-content-digest'), image.digest);
});

test('tag and catalog pages through the mirror: each Link keeps the ns and reaches the next page', async () => {
  const image = makeImage();
  for (const tag of ['1', '2']) await pushImage(wharf.url, 'team-local/team/paged', image, tag);
  await pushImage(wharf.url, 'team-local/team/zz-last', image, '1');
  const first = await fetch(`${mirror}/v2/team/paged/tags/list?${ns}&n=1`);
  assert.equal(((await first.json()) as { tags: string[] }).tags, ['1']);
  const second = await fetch(followed(first, 'link'));
  assert.is(second.status, 200);
  assert.equal(((await second.json()) as { tags: string[] }).tags, ['2']);
  const catalog = await fetch(`${mirror}/v2/_catalog?${ns}&n=1`);
  const [name] = ((await catalog.json()) as { repositories: string[] }).repositories;
  const next = await fetch(followed(catalog, 'link'));
  assert.is(next.status, 200);
  const rest = ((await next.json()) as { repositories: string[] }).repositories;
  assert.ok(rest.length > 0 && rest[0]! > name!, `the next page of the same catalog: ${name} then ${rest.join(', ')}`);
});

test.run();
