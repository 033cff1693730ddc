import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { startDistribution } from '../helpers/upstream.js';
import { dockerClient, pushWith } from '../helpers/auth.js';

// Real clients against an authenticated Wharf: skopeo, the docker CLI (login and manifest, no
// daemon), podman, CNCF Distribution as a pull-through cache, and another Wharf as a remote.

let wharf: TestServer;
let host: string;
let log = '';
const passwords = { ci: 'ci-password-1', reader: 'reader-password', dana: 'dana-password', mirror: 'mirror-password' };

test.before(async () => {
  wharf = await startWharf({
    auth: {},
    accessLog: (text) => { log += text; },
    audit: (line) => { log += `${line}\n`; },
    repositories: { 'docker-local': { type: 'local' }, 'open-local': { type: 'local' } },
    users: [{ name: 'ci', password: passwords.ci }, { name: 'reader', password: passwords.reader }, { name: 'dana', password: passwords.dana }, { name: 'mirror', password: passwords.mirror }],
    permissions: [
      { name: 'team', repositories: ['docker-local'], include: ['team/**'], users: { ci: ['deploy'], reader: ['read'], mirror: ['read'], dana: ['delete'] } },
      { name: 'open', repositories: ['open-local'], anonymous: ['read'], users: { ci: ['deploy'] } },
    ],
  });
  host = new URL(wharf.url).host;
});
test.after(async () => {
  await wharf.cleanup();
  for (const secret of Object.values(passwords)) assert.not.match(log, secret, 'no password in the access or audit log');
  assert.not.match(log, /Bearer|Basic |eyJ[A-Za-z0-9_-]{10}/, 'no Authorization header or token either');
});

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env: options.env ?? process.env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin!.end(options.input ?? '');
  });
}

async function layout(tag: string) {
  const dir = join(await tempDir('wharf-layout-'), 'image');
  const image = makeImage({ layers: 2 });
  await writeOciLayout(dir, tag, [image]);
  return { dir, image };
}

test('skopeo: login, push and pull with rights; refused without them, and nothing stored', async () => {
  const authfile = join(await tempDir(), 'auth.json');
  const good = await run('skopeo', ['login', '--tls-verify=false', '--authfile', authfile, '-u', 'ci', '--password-stdin', host], { input: passwords.ci });
  assert.is(good.code, 0, good.out);
  const bad = await run('skopeo', ['login', '--tls-verify=false', '--authfile', join(await tempDir(), 'a.json'), '-u', 'ci', '--password-stdin', host], { input: 'wrong-password' });
  assert.is.not(bad.code, 0, 'a wrong password fails the login');
  const { dir, image } = await layout('v1');
  await skopeo(['copy', '--dest-tls-verify=false', '--authfile', authfile, `oci:${dir}:v1`, `docker://${host}/docker-local/team/app:1.0`]);
  const inspected = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `reader:${passwords.reader}`, `docker://${host}/docker-local/team/app:1.0`])) as { config: { digest: string } };
  assert.is(inspected.config.digest, image.config.digest);
  const refused = await run('skopeo', ['--policy', join(await policyDir(), 'policy.json'), 'copy', '--dest-tls-verify=false', '--dest-creds', `reader:${passwords.reader}`, `oci:${dir}:v1`, `docker://${host}/docker-local/team/ro:1.0`]);
  assert.is.not(refused.code, 0);
  assert.match(refused.out, /denied|DENIED/);
  const stored = await dockerClient(wharf.url, { user: 'ci', password: passwords.ci })('/v2/docker-local/team/ro/tags/list');
  assert.is(stored.status, 404, 'nothing stored for the refused push');
});

test('skopeo delete (scope repository:…:*): granted to a user with delete, refused to a deployer', async () => {
  const { dir } = await layout('v1');
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `ci:${passwords.ci}`, `oci:${dir}:v1`, `docker://${host}/docker-local/team/doomed:1`]);
  const refused = await run('skopeo', ['delete', '--tls-verify=false', '--creds', `ci:${passwords.ci}`, `docker://${host}/docker-local/team/doomed:1`]);
  assert.is.not(refused.code, 0);
  const deleted = await run('skopeo', ['delete', '--tls-verify=false', '--creds', `dana:${passwords.dana}`, `docker://${host}/docker-local/team/doomed:1`]);
  assert.is(deleted.code, 0, deleted.out);
  const gone = await dockerClient(wharf.url, { user: 'dana', password: passwords.dana })('/v2/docker-local/team/doomed/manifests/1');
  assert.is(gone.status, 404);
  assert.match(log, /who=dana from=127\.0\.0\.1 action=delete target=docker-local\/team\/doomed@sha256:\S+ result=ok/);
});

async function policyDir(): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  return dir;
}

test('skopeo: anonymous pull allowed on one repository, refused on another', async () => {
  const { dir } = await layout('v1');
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `ci:${passwords.ci}`, `oci:${dir}:v1`, `docker://${host}/open-local/pub:1`]);
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `ci:${passwords.ci}`, `oci:${dir}:v1`, `docker://${host}/docker-local/team/priv:1`]);
  const open = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${host}/open-local/pub:1`]);
  assert.is(open.code, 0, open.out);
  const closed = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${host}/docker-local/team/priv:1`]);
  assert.is.not(closed.code, 0);
  assert.match(closed.out, /unauthorized|authentication required/i);
});

test('docker CLI: login keeps a refresh token; manifest inspect and push run on it', async () => {
  const dockerConfig = await tempDir('wharf-docker-');
  const env = { ...process.env, DOCKER_CONFIG: dockerConfig };
  const image = makeImage({ layers: 1 });
  assert.is((await pushWith(dockerClient(wharf.url, { user: 'dana', password: passwords.dana }), 'docker-local/team/base', image, '1')).status, 201);
  const bad = await run('docker', ['login', host, '-u', 'dana', '--password-stdin'], { env, input: 'not-the-password' });
  assert.is.not(bad.code, 0, 'docker login fails for a wrong password (no anonymous 200 on /v2/ to fool it)');
  const login = await run('docker', ['login', host, '-u', 'dana', '--password-stdin'], { env, input: passwords.dana });
  assert.is(login.code, 0, login.out);
  const saved = JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, { identitytoken?: string }> };
  assert.ok(saved.auths[host]?.identitytoken, 'docker keeps the refresh token, not the password');
  assert.not.match(JSON.stringify(saved), passwords.dana);
  log = log.replace(/[^\n]*\n/g, (line) => (line.includes('POST /v2/token') ? '' : line));
  const inspect = await run('docker', ['manifest', 'inspect', '--insecure', `${host}/docker-local/team/base:1`], { env });
  assert.is(inspect.code, 0, inspect.out);
  assert.is((JSON.parse(inspect.out) as { config: { digest: string } }).config.digest, image.config.digest);
  assert.match(log, 'dana "POST /v2/token" 200', 'the refresh token bought the access token');
  const created = await run('docker', ['manifest', 'create', '--insecure', `${host}/docker-local/team/list:1`, `${host}/docker-local/team/base:1`], { env });
  assert.is(created.code, 0, created.out);
  const pushed = await run('docker', ['manifest', 'push', '--insecure', `${host}/docker-local/team/list:1`], { env });
  assert.is(pushed.code, 0, pushed.out);
  const list = await dockerClient(wharf.url, { user: 'reader', password: passwords.reader })('/v2/docker-local/team/list/manifests/1', { headers: { Accept: 'application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json' } });
  assert.is(list.status, 200);
  assert.match(log, /dana "POST \/v2\/docker-local\/team\/list\/blobs\/uploads\/\?from=docker-local%2Fteam%2Fbase&mount=\S+" 201/, 'the mount from a readable source answered 201');
});

test('podman: login succeeds with the password, fails without it', async () => {
  const dir = await tempDir('wharf-podman-');
  const common = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  const authfile = join(dir, 'auth.json');
  const good = await run('podman', [...common, 'login', '--tls-verify=false', '--authfile', authfile, '-u', 'ci', '--password-stdin', host], { input: passwords.ci });
  assert.is(good.code, 0, good.out);
  assert.match(good.out, 'Login Succeeded');
  const bad = await run('podman', [...common, 'login', '--tls-verify=false', '--authfile', join(dir, 'bad.json'), '-u', 'ci', '--password-stdin', host], { input: 'wrong-password' });
  assert.is.not(bad.code, 0, bad.out);
});

test('CNCF Distribution as a pull-through cache of the authenticated Wharf', async () => {
  const image = makeImage({ layers: 2 });
  assert.is((await pushWith(dockerClient(wharf.url, { user: 'ci', password: passwords.ci }), 'docker-local/team/mirrored', image, '3')).status, 201);
  const distribution = await startDistribution({ proxy: { remoteurl: wharf.url, username: 'mirror', password: passwords.mirror } });
  try {
    const manifest = await fetch(`${distribution.url}/v2/docker-local/team/mirrored/manifests/3`, { headers: { Accept: OCI_MANIFEST } });
    assert.is(manifest.status, 200, await manifest.clone().text());
    assert.is(manifest.headers.get('docker-content-digest'), image.digest);
    const layer = await fetch(`${distribution.url}/v2/docker-local/team/mirrored/blobs/${image.layers[1]!.digest}`);
    assert.equal(Buffer.from(await layer.arrayBuffer()), image.layers[1]!.bytes);
    assert.match(log, 'mirror "GET /v2/docker-local/team/mirrored/manifests/3" 200', 'Distribution logged in as mirror');
  } finally {
    await distribution.stop();
  }
});

test('an authenticated Wharf as the upstream of another Wharf; fetching into the cache needs deploy there', async () => {
  const image = makeImage({ layers: 1 });
  assert.is((await pushWith(dockerClient(wharf.url, { user: 'ci', password: passwords.ci }), 'docker-local/team/up', image, '1')).status, 201);
  const edge = await startWharf({
    auth: {},
    repositories: { hub: { type: 'remote', url: `${wharf.url}/api/docker/docker-local`, username: 'mirror', password: passwords.mirror } },
    users: [{ name: 'fetcher', password: 'fetcher-password' }, { name: 'viewer', password: 'viewer-password' }],
    permissions: [{ name: 'hub', repositories: ['hub'], users: { fetcher: ['deploy'], viewer: ['read'] } }],
  });
  try {
    const viewer = dockerClient(edge.url, { user: 'viewer', password: 'viewer-password' });
    const cold = await viewer('/v2/hub/team/up/manifests/1', { headers: { Accept: OCI_MANIFEST } });
    assert.is(cold.status, 404, 'read serves only what is cached');
    assert.match(await cold.text(), 'fetching it from the upstream needs the deploy permission');
    const fetched = await dockerClient(edge.url, { user: 'fetcher', password: 'fetcher-password' })('/v2/hub/team/up/manifests/1', { headers: { Accept: OCI_MANIFEST } });
    assert.is(fetched.status, 200);
    assert.is(fetched.headers.get('docker-content-digest'), image.digest);
    const warm = await viewer('/v2/hub/team/up/manifests/1', { headers: { Accept: OCI_MANIFEST } });
    assert.is(warm.status, 200, 'once cached, read is enough');
    assert.is((await viewer(`/v2/hub/team/up/blobs/${image.layers[0]!.digest}`)).status, 404, 'a blob not fetched yet');
    const tags = await viewer('/v2/hub/team/up/tags/list');
    assert.equal(await tags.json(), { name: 'hub/team/up', tags: ['1'] }, 'tags as cached, without asking the upstream');
    assert.match(log, 'mirror "GET /api/docker/docker-local/v2/team/up/manifests/1" 200', 'the edge logged in upstream as mirror');
  } finally {
    await edge.cleanup();
  }
});

test.run();
