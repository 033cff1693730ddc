import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic } from '../helpers/auth.js';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { startWharf } from '../helpers/server.js';
import { startCountingProxy, startDistribution } from '../helpers/upstream.js';

// Where a remote repository fetches from is configuration: callers learn it neither from the
// Warning of a stale answer nor from Set Me Up, which names it to admins only.

const users = [{ name: 'reader', password: 'reader-password' }, { name: 'root', password: 'root-password', admin: true }];
const as = (user: string, password: string) => ({ authorization: basic(user, password) });
const reader = as('reader', 'reader-password');
const admin = as('root', 'root-password');

test('a stale tag list carries Warning 110 without the upstream URL, for a reader and for an admin', async () => {
  const distribution = await startDistribution();
  const proxy = await startCountingProxy(distribution.url);
  const wharf = await startWharf({
    auth: {},
    users,
    repositories: { 'docker-remote': { type: 'remote', url: proxy.url, offlineAfter: 100 } },
    permissions: [{ name: 'mirror', repositories: ['docker-remote'], users: { reader: ['read', 'deploy'] } }],
  });
  try {
    await seedImage(distribution.url, 'team/app', makeImage(), '1.0');
    const tags = (headers: Record<string, string>) => fetch(`${wharf.url}/v2/docker-remote/team/app/tags/list`, { headers });
    assert.is((await fetch(`${wharf.url}/v2/docker-remote/team/app/manifests/1.0`, { headers: reader })).status, 200);
    assert.is((await tags(reader)).headers.get('warning'), null);
    proxy.fault = 'down';
    for (const headers of [reader, admin]) {
      const stale = await tags(headers);
      assert.is(stale.status, 200);
      const warning = stale.headers.get('warning') ?? '';
      assert.match(warning, /^110 wharf "Response is Stale/);
      assert.not.match(warning, new URL(proxy.url).host);
      assert.not.match(warning, 'http');
    }
  } finally {
    await wharf.cleanup();
    await proxy.stop();
    await distribution.stop();
  }
});

test('Set Me Up of a remote repository names its upstream to admins only', async () => {
  const upstream = 'mirror-source.internal.example:5000';
  const wharf = await startWharf({
    auth: {},
    users,
    repositories: { 'docker-remote': { type: 'remote', url: `https://${upstream}` }, 'docker-hub': { type: 'remote', url: 'https://registry-1.docker.io' } },
    permissions: [{ name: 'mirror', repositories: ['*'], users: { reader: ['read'] } }],
  });
  try {
    const setup = async (key: string, headers: Record<string, string>) => {
      const response = await fetch(`${wharf.url}/api/setup/${key}`, { headers });
      assert.is(response.status, 200);
      return response.text();
    };
    const forAdmin = await setup('docker-remote', admin);
    assert.match(forAdmin, `As a mirror of ${upstream}:`);
    assert.match(forAdmin, `server = "https://${upstream}"`);
    const forReader = await setup('docker-remote', reader);
    assert.not.match(forReader, 'mirror-source');
    assert.match(forReader, '/etc/containerd/certs.d/<upstream>/hosts.toml');
    assert.match(forReader, `docker pull ${new URL(wharf.url).host}/docker-remote/team/app:1.0`, 'the rest of the text is there');
    assert.match(await setup('docker-hub', admin), 'As a mirror of docker.io:');
    assert.not.match(await setup('docker-hub', reader), 'docker.io');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
