import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { fetchToken } from '../helpers/auth.js';
import { blob, makeImage } from '../helpers/images.js';
import { startWharf, type TestServer } from '../helpers/server.js';

// README, "What the registry API does": `Docker-Distribution-API-Version: registry/2.0` on every
// response. Every endpoint is called once with access control on, successes, challenges and
// errors alike, by path and by the Artifactory prefix, and each answer must carry the header.

let wharf: TestServer;

test.before(async () => {
  wharf = await startWharf({ auth: {}, audit: () => {}, users: [{ name: 'root', password: 'root-password-1', admin: true }] });
});
test.after(() => wharf.cleanup());

test('every registry API response carries Docker-Distribution-API-Version: registry/2.0', async () => {
  const seen: { what: string; status: number; version: string | null }[] = [];
  const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', {
    credentials: { user: 'root', password: 'root-password-1' },
    scopes: ['repository:docker-local/team/app:pull,push,delete', 'registry:catalog:*'],
  });
  const call = async (what: string, path: string, init: RequestInit & { anonymous?: boolean } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (!init.anonymous) headers.set('authorization', `Bearer ${token}`);
    const response = await fetch(new URL(path, wharf.url), { ...init, headers });
    seen.push({ what, status: response.status, version: response.headers.get('docker-distribution-api-version') });
    return response;
  };
  const name = '/v2/docker-local/team/app';
  const image = makeImage({ layers: 1 });
  const [layer] = image.layers;
  await call('base, anonymous', '/v2/', { anonymous: true });
  await call('base', '/v2/');
  await call('blob HEAD, anonymous', `${name}/blobs/${layer!.digest}`, { method: 'HEAD', anonymous: true });
  // Uploads: monolithic, chunked with status and final PUT, cancel, mount.
  await call('monolithic POST', `${name}/blobs/uploads/?digest=${image.config.digest}`, { method: 'POST', body: image.config.bytes });
  const started = await call('POST', `${name}/blobs/uploads/`, { method: 'POST' });
  const location = started.headers.get('location')!;
  await call('PATCH', location, { method: 'PATCH', body: layer!.bytes, headers: { 'content-range': `0-${layer!.bytes.length - 1}` } });
  await call('PATCH out of order', location, { method: 'PATCH', body: Buffer.from('x'), headers: { 'content-range': '5-5' } });
  await call('upload status', location);
  await call('final PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${layer!.digest}`, { method: 'PUT' });
  const cancelled = await call('POST to cancel', `${name}/blobs/uploads/`, { method: 'POST' });
  await call('cancel', cancelled.headers.get('location')!, { method: 'DELETE' });
  await call('unknown upload', `${name}/blobs/uploads/00000000-0000-0000-0000-000000000000`);
  await call('mount', `${name}/blobs/uploads/?mount=${layer!.digest}&from=docker-local/team/app`, { method: 'POST' });
  // Blobs.
  await call('blob HEAD', `${name}/blobs/${layer!.digest}`, { method: 'HEAD' });
  await (await call('blob GET', `${name}/blobs/${layer!.digest}`)).arrayBuffer();
  await (await call('blob range', `${name}/blobs/${layer!.digest}`, { headers: { range: 'bytes=0-9' } })).arrayBuffer();
  await call('blob range beyond', `${name}/blobs/${layer!.digest}`, { headers: { range: 'bytes=99999-' } });
  await call('unknown blob', `${name}/blobs/${blob(randomBytes(8)).digest}`);
  // Manifests, listings, referrers.
  await call('manifest PUT', `${name}/manifests/1.0`, { method: 'PUT', body: image.manifest, headers: { 'content-type': OCI_MANIFEST } });
  await call('manifest PUT invalid', `${name}/manifests/bad`, { method: 'PUT', body: Buffer.from('{'), headers: { 'content-type': OCI_MANIFEST } });
  await (await call('manifest GET', `${name}/manifests/1.0`)).arrayBuffer();
  await call('manifest HEAD by digest', `${name}/manifests/${image.digest}`, { method: 'HEAD' });
  await call('unknown manifest', `${name}/manifests/nope`);
  await call('tags', `${name}/tags/list?n=1`);
  await call('bad n', `${name}/tags/list?n=abc`);
  await call('catalog', '/v2/_catalog');
  await call('referrers', `${name}/referrers/${image.digest}?artifactType=application/x.test`);
  await call('prefix tags', '/api/docker/docker-local/v2/team/app/tags/list');
  await call('prefix catalog', '/api/docker/docker-local/v2/_catalog');
  // Errors of names, methods and paths; deletes.
  await call('encoded slash', '/v2/docker-local/team%2Fapp/tags/list');
  await call('unknown key', '/v2/nowhere/app/tags/list');
  await call('unknown endpoint', `${name}/nothing-here`);
  await call('wrong method', `${name}/tags/list`, { method: 'POST' });
  await call('blob DELETE in use', `${name}/blobs/${layer!.digest}`, { method: 'DELETE' });
  await call('manifest DELETE', `${name}/manifests/1.0`, { method: 'DELETE' });
  await call('manifest DELETE by digest', `${name}/manifests/${image.digest}`, { method: 'DELETE' });
  const statuses = new Set(seen.map((s) => s.status));
  for (const status of [200, 201, 202, 204, 206, 400, 401, 404, 409, 416]) assert.ok(statuses.has(status), `a ${status} was among the answers: ${JSON.stringify(seen)}`);
  assert.equal(seen.filter((s) => s.version !== 'registry/2.0'), [], 'answers without the header');
});

test.run();
