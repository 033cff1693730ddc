import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, testStorage, type TestServer } from '../helpers/server.js';

// Labels hold whatever a config's JSON strings may: a NUL, a value of many KiB (incompressible,
// so PostgreSQL's btree could not index it whole), a key far too long to be real. The push
// succeeds on both storages, the info shows the labels (NUL as U+FFFD), and search by
// label=key=value finds the long value whole.

for (const layout of ['default', 's3-postgres']) {
  const test = suite(`odd labels (${layout})`);
  let wharf: TestServer;
  test.before(async () => {
    wharf = await startWharf({ storage: await testStorage(layout) });
  });
  test.after(() => wharf.cleanup());

  test('a NUL, a 10 KB value and a 600-character key: pushed, shown, searched', async () => {
    const long = randomBytes(5000).toString('hex');
    const image = makeImage({ layers: 1, labels: { nul: 'a\u0000b', description: long, ['k'.repeat(600)]: 'v' } });
    await pushImage(wharf.url, 'docker-local/team/odd', image, '1');
    const response = await fetch(`${wharf.url}/api/docker/docker-local/info/team/odd/1`);
    assert.is(response.status, 200, await response.clone().text());
    const { images: [shown] } = (await response.json()) as { images: { labels: Record<string, string> }[] };
    assert.equal(Object.keys(shown!.labels).sort(), ['description', 'nonce', 'nul'], 'the 600-character key is not kept');
    assert.is(shown!.labels.nul, 'a\uFFFDb');
    assert.is(shown!.labels.description, long);
    for (const label of [`description=${long}`, 'nul=a\u0000b', 'nul=a\uFFFDb']) {
      const found = await fetch(`${wharf.url}/api/search/docker?label=${encodeURIComponent(label)}`);
      const { results } = (await found.json()) as { results: { digest: string }[] };
      assert.equal(results.map((r) => r.digest), [image.digest], label.slice(0, 20));
    }
    const prefix = await fetch(`${wharf.url}/api/search/docker?label=${encodeURIComponent(`description=${long.slice(0, 300)}`)}`);
    assert.equal(((await prefix.json()) as { results: unknown[] }).results, [], 'the whole value is compared, not its indexed prefix');
  });

  test.run();
}
