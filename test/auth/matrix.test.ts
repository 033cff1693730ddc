import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage, type Image } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { cliConfig, runCli, startWharf, type TestServer } from '../helpers/server.js';
import { challengeOf, dockerClient, fetchToken, pushWith } from '../helpers/auth.js';

// The permission matrix: every principal × every registry route × every access method, each
// request made as a Docker client makes it (challenge, token for the scope, request). Whatever
// a principal may do must be let through and everything else refused (401/403): zero
// unexpected grants, zero unexpected refusals.

type Action = 'read' | 'deploy' | 'delete' | 'any';
const levels = ['read', 'annotate', 'deploy', 'delete', 'manage'];
const domain = 'matrix.test';
const images = ['team/app', 'team/public/app', 'other/app'];
const password = (name: string) => `${name}-password`;

// Who may do what, written independently of the server's code: the expectation.
const principals: { name: string; credentials?: { user: string; password: string }; may: (image: string, action: Action) => boolean }[] = [
  { name: 'admin', credentials: { user: 'root', password: password('root') }, may: () => true },
  ...levels.map((level) => ({
    name: `user with ${level}`,
    credentials: { user: `u-${level}`, password: password(`u-${level}`) },
    may: (image: string, action: Action) => action === 'any' || (image.startsWith('team/') && levels.indexOf(level) >= levels.indexOf(action))
      || (image.startsWith('team/public/') && action === 'read'),
  })),
  {
    name: 'group member (deploy)',
    credentials: { user: 'g', password: password('g') },
    may: (image, action) => action === 'any' || (image.startsWith('team/') && action !== 'delete'),
  },
  {
    name: 'access token (pull on team/**, owner may delete)',
    credentials: { user: 'owner', password: '' },
    may: (image, action) => action === 'any' || (image.startsWith('team/') && action === 'read'),
  },
  { name: 'anonymous', may: (image, action) => action === 'any' || (image.startsWith('team/public/') && action === 'read') },
];

let wharf: TestServer;
let portBound: string;
const seeded = new Map<string, Image>();

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    baseDomain: domain,
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, repository: 'docker-local' }],
    users: [
      { name: 'root', password: password('root'), admin: true },
      ...levels.map((level) => ({ name: `u-${level}`, password: password(`u-${level}`) })),
      { name: 'g', password: password('g'), groups: ['devs'] },
      { name: 'owner', password: password('owner') },
    ],
    permissions: [
      { name: 'team', repositories: ['docker-local'], include: ['team/**'], users: Object.fromEntries(levels.map((level) => [`u-${level}`, [level]])), groups: { devs: ['deploy'] } },
      { name: 'owner', repositories: ['*'], include: ['team/**'], users: { owner: ['delete'] } },
      { name: 'public', repositories: ['docker-local'], include: ['team/public/**'], anonymous: ['read'] },
    ],
  });
  portBound = new URL(wharf.urls[1]!).port;
  const created = await runCli(['token', 'create', '--user', 'owner', '--scope', 'repository:docker-local/team/**:pull', '--config', await cliConfig(wharf)]);
  principals.find((p) => p.name.startsWith('access token'))!.credentials!.password = created.stdout.trim();
  const root = dockerClient(wharf.url, { user: 'root', password: password('root') });
  for (const image of images) {
    const made = makeImage({ layers: 1 });
    assert.is((await pushWith(root, `docker-local/${image}`, made, 'v1')).status, 201);
    seeded.set(image, made);
  }
});
test.after(() => wharf.cleanup());

interface Method {
  name: string;
  base: () => string;
  /** The path prefix before the image name, and how the image is named. */
  prefix: string;
  name_: (image: string) => string;
}

const methods: Method[] = [
  { name: 'path', base: () => wharf.url, prefix: '/v2/', name_: (image) => `docker-local/${image}` },
  { name: 'subdomain', base: () => `http://docker-local.${domain}:${new URL(wharf.url).port}`, prefix: '/v2/', name_: (image) => image },
  { name: 'port binding', base: () => `http://127.0.0.1:${portBound}`, prefix: '/v2/', name_: (image) => image },
  { name: '/api/docker prefix', base: () => wharf.url, prefix: '/api/docker/docker-local/v2/', name_: (image) => image },
];

interface Route {
  name: string;
  action: Action;
  request: (image: Image, uploads: () => Promise<string>) => Promise<{ method: string; path: string; body?: Buffer<ArrayBuffer>; headers?: Record<string, string> }>;
}

const randomDigest = () => digestOf(randomBytes(16));
const routes: Route[] = [
  { name: 'GET manifest', action: 'read', request: async () => ({ method: 'GET', path: 'manifests/v1', headers: { Accept: OCI_MANIFEST } }) },
  { name: 'HEAD manifest', action: 'read', request: async () => ({ method: 'HEAD', path: 'manifests/v1', headers: { Accept: OCI_MANIFEST } }) },
  { name: 'GET blob', action: 'read', request: async (image) => ({ method: 'GET', path: `blobs/${image.layers[0]!.digest}` }) },
  { name: 'HEAD blob', action: 'read', request: async (image) => ({ method: 'HEAD', path: `blobs/${image.layers[0]!.digest}` }) },
  { name: 'GET tags', action: 'read', request: async () => ({ method: 'GET', path: 'tags/list' }) },
  { name: 'GET referrers', action: 'read', request: async (image) => ({ method: 'GET', path: `referrers/${image.digest}` }) },
  { name: 'POST upload', action: 'deploy', request: async () => ({ method: 'POST', path: 'blobs/uploads/' }) },
  { name: 'GET upload', action: 'deploy', request: async (_, session) => ({ method: 'GET', path: `blobs/uploads/${await session()}` }) },
  { name: 'PATCH upload', action: 'deploy', request: async (_, session) => ({ method: 'PATCH', path: `blobs/uploads/${await session()}`, body: Buffer.from('x') }) },
  { name: 'PUT upload', action: 'deploy', request: async (_, session) => ({ method: 'PUT', path: `blobs/uploads/${await session()}?digest=${randomDigest()}` }) },
  { name: 'DELETE upload', action: 'deploy', request: async (_, session) => ({ method: 'DELETE', path: `blobs/uploads/${await session()}` }) },
  { name: 'PUT manifest', action: 'deploy', request: async (image) => ({ method: 'PUT', path: 'manifests/v1', body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST } }) },
  { name: 'DELETE manifest', action: 'delete', request: async () => ({ method: 'DELETE', path: `manifests/${randomDigest()}` }) },
  { name: 'DELETE blob', action: 'delete', request: async () => ({ method: 'DELETE', path: `blobs/${randomDigest()}` }) },
];

/** An upload session of `image`, opened by the admin (sessions belong to the repository and image). */
async function session(image: string): Promise<string> {
  const response = await dockerClient(wharf.url, { user: 'root', password: password('root') })(`/v2/docker-local/${image}/blobs/uploads/`, { method: 'POST' });
  assert.is(response.status, 202);
  return response.headers.get('docker-upload-uuid')!;
}

/** Client requests as Docker makes them, with one token per (realm, scope) kept. */
function client(base: string, credentials: { user: string; password: string } | undefined) {
  const tokens = new Map<string, string>();
  return async (path: string, init: { method: string; body?: Buffer<ArrayBuffer>; headers?: Record<string, string> }) => {
    const first = await fetch(`${base}${path}`, init);
    if (first.status !== 401) return first;
    const { realm, service, scope } = challengeOf(first);
    await first.arrayBuffer();
    const key = `${realm} ${scope}`;
    if (!tokens.has(key)) tokens.set(key, (await fetchToken(realm, service, { ...(credentials ? { credentials } : {}), scopes: scope ? [scope] : [] })).token);
    return fetch(`${base}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${tokens.get(key)}` } });
  };
}

test('every principal × every route × every access method: no unexpected grant, no unexpected refusal', async () => {
  const unexpected: string[] = [];
  let checked = 0;
  await withHostEntries([`docker-local.${domain}`], async () => {
    for (const principal of principals) {
      for (const method of methods) {
        const send = client(method.base(), principal.credentials);
        const judge = (what: string, allowed: boolean, status: number) => {
          checked++;
          const refused = status === 401 || status === 403;
          if (status >= 500) unexpected.push(`${what}: ${status}`);
          else if (allowed === refused) unexpected.push(`${what}: ${allowed ? 'refused' : 'granted'} (${status})`);
        };
        judge(`${principal.name} ${method.name} GET /v2/`, true, (await send(method.prefix, { method: 'GET' })).status);
        const catalog = await send(`${method.prefix}_catalog`, { method: 'GET' });
        judge(`${principal.name} ${method.name} GET _catalog`, true, catalog.status);
        const listed = ((await catalog.json()) as { repositories: string[] }).repositories;
        const visible = images.filter((image) => principal.may(image, 'read')).map(method.name_).sort();
        if (JSON.stringify(listed) !== JSON.stringify(visible)) unexpected.push(`${principal.name} ${method.name} catalog lists ${JSON.stringify(listed)}, expected ${JSON.stringify(visible)}`);
        for (const image of images) {
          for (const route of routes) {
            const request = await route.request(seeded.get(image)!, () => session(image));
            const response = await send(`${method.prefix}${method.name_(image)}/${request.path}`, request);
            await response.arrayBuffer();
            judge(`${principal.name} ${method.name} ${route.name} ${image}`, principal.may(image, route.action), response.status);
          }
        }
      }
    }
  });
  assert.equal(unexpected, []);
  assert.is(checked, principals.length * methods.length * (2 + images.length * routes.length));
});

test.run();
