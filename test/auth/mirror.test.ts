import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { challengeOf, dockerClient } from '../helpers/auth.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, startDistribution, type CountingProxy, type Distribution } from '../helpers/upstream.js';

// A mirror of several upstreams under access control: the Bearer challenge's realm carries the
// request's ns, so the token containerd fetches names the repository that ns chose, and the
// request it retries with that token is let through (not challenged again for another scope).

let upstream: Distribution;
let hubProxy: CountingProxy;
let ghcrProxy: CountingProxy;
let wharf: TestServer;
const alpine = makeImage();
const tool = makeImage();

test.before(async () => {
  upstream = await startDistribution();
  [hubProxy, ghcrProxy] = await Promise.all([startCountingProxy(upstream.url), startCountingProxy(upstream.url)]);
  await seedImage(upstream.url, 'library/alpine', alpine, 'latest');
  await seedImage(upstream.url, 'owner/tool', tool, '1.0');
  wharf = await startWharf({
    auth: {},
    audit: () => undefined,
    repositories: { 'docker-hub': { type: 'remote', url: hubProxy.url }, 'ghcr-remote': { type: 'remote', url: ghcrProxy.url } },
    permissions: [{ name: 'mirror', repositories: ['docker-hub', 'ghcr-remote'], anonymous: ['read', 'deploy'] }],
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, mirrors: { 'docker.io': 'docker-hub', 'ghcr.io': 'ghcr-remote' } }],
  });
});
test.after(async () => {
  await wharf.cleanup();
  await Promise.all([hubProxy.stop(), ghcrProxy.stop()]);
  await upstream.stop();
});

test('the challenge names a realm with the ns; the token it yields serves that upstream', async () => {
  const mirror = wharf.urls[1]!;
  const first = await fetch(`${mirror}/v2/owner/tool/manifests/1.0?ns=ghcr.io`);
  assert.is(first.status, 401);
  const challenge = challengeOf(first);
  assert.is(challenge.realm, `${mirror}/v2/token?ns=ghcr.io`);
  assert.is(challenge.scope, 'repository:owner/tool:pull');
  hubProxy.reset();
  ghcrProxy.reset();
  const client = dockerClient(mirror);
  const tool1 = await client('/v2/owner/tool/manifests/1.0?ns=ghcr.io');
  assert.is(tool1.status, 200);
  assert.is(tool1.headers.get('docker-content-digest'), tool.digest);
  assert.is(ghcrProxy.counts['GET manifest'], 1);
  assert.is(hubProxy.counts['GET manifest'], undefined);
  // Without ns (Docker's registry-mirrors), docker.io: the realm carries nothing extra.
  const plain = await fetch(`${mirror}/v2/library/alpine/manifests/latest`);
  assert.is(challengeOf(plain).realm, `${mirror}/v2/token`);
  const alpine1 = await client('/v2/library/alpine/manifests/latest');
  assert.is(alpine1.headers.get('docker-content-digest'), alpine.digest);
});

test.run();
