import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { seedImage } from '../helpers/registry.js';
import { remoteFixture } from '../helpers/upstream.js';

// Issue 11 item 11: while the upstream is down, a remote repository's tags/list answers with the
// tags it has cached, marked stale like its manifests (Warning: 110), instead of failing.

const fixture = remoteFixture(test, (url) => ({ 'docker-remote': { type: 'remote', url, metadataTtl: '1s', offlineAfter: 100 } }));

test('tags/list serves the cached tags with Warning 110 while the upstream is down; an image never seen still fails', async () => {
  const image = makeImage();
  await seedImage(fixture.distribution.url, 'team/app', image, '1.0');
  await seedImage(fixture.distribution.url, 'team/app', image, '2.0');
  for (const tag of ['1.0', '2.0']) assert.is((await fetch(`${fixture.wharf.url}/v2/docker-remote/team/app/manifests/${tag}`)).status, 200);
  const live = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/app/tags/list`);
  assert.is(live.status, 200);
  assert.is(live.headers.get('warning'), null);
  fixture.proxy.fault = 'down';
  try {
    const stale = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/app/tags/list`);
    assert.is(stale.status, 200);
    assert.equal(await stale.json(), { name: 'docker-remote/team/app', tags: ['1.0', '2.0'] });
    assert.match(stale.headers.get('warning') ?? '', /^110 wharf "Response is Stale/);
    assert.not.match(stale.headers.get('warning') ?? '', '127.0.0.1', 'the upstream is not named to callers');
    const paged = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/app/tags/list?n=1`);
    assert.equal(await paged.json(), { name: 'docker-remote/team/app', tags: ['1.0'] });
    assert.match(paged.headers.get('link') ?? '', /last=1\.0/);
    const unknown = await fetch(`${fixture.wharf.url}/v2/docker-remote/team/never/tags/list`);
    assert.ok(unknown.status >= 500, `an image never cached fails (${unknown.status})`);
  } finally {
    fixture.proxy.fault = 'none';
  }
});

test.run();
