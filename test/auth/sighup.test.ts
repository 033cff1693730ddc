import { writeFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basic, fetchToken } from '../helpers/auth.js';
import { errorCode } from '../helpers/registry.js';
import { runCli, spawnWharf, tempDir, testStorage } from '../helpers/server.js';
import { terminate } from '../helpers/children.js';

// Permission targets follow `kill -HUP` of a running `wharf serve`: a grant taken away is gone
// for Basic credentials and for a bearer token issued before the reload alike.

const configWith = (dataDir: string, storage: Record<string, unknown>, grants: string) => [
  `dataDir: ${dataDir}`,
  `certsDir: ${dataDir}-certs`,
  `storage: ${JSON.stringify(storage)}`,
  'repositories:\n  docker-local: { type: local }',
  'log: { access: false }',
  `permissions:\n  - { name: readers, repositories: [docker-local], users: { ${grants} } }`,
  '',
].join('\n');

test('kill -HUP with a permission taken away: the next request is denied, and the process keeps serving', async () => {
  const dataDir = await tempDir();
  const configFile = `${dataDir}.yaml`;
  const storage = await testStorage();
  const before = configWith(dataDir, storage, 'ci: [read]');
  await writeFile(configFile, before);
  const added = await runCli(['user', 'add', 'ci', '--password-stdin', '--config', configFile], process.env, 'ci-password-1\n');
  assert.is(added.code, 0, added.stderr);
  const wharf = await spawnWharf(dataDir, { config: before });
  try {
    const tags = `${wharf.url}/v2/docker-local/team/app/tags/list`;
    const withBasic = () => fetch(tags, { headers: { authorization: basic('ci', 'ci-password-1') } });
    const { token } = await fetchToken(`${wharf.url}/v2/token`, 'wharf', { credentials: { user: 'ci', password: 'ci-password-1' }, scopes: ['repository:docker-local/team/app:pull'] });
    const withToken = () => fetch(tags, { headers: { authorization: `Bearer ${token}` } });
    // Granted: the image is simply not there yet.
    for (const response of [await withBasic(), await withToken()]) {
      assert.is(response.status, 404);
      assert.is(await errorCode(response), 'NAME_UNKNOWN');
    }
    await writeFile(configFile, configWith(dataDir, storage, 'someone-else: [read]'));
    assert.ok(wharf.child.kill('SIGHUP'));
    await wharf.log.waitFor('reload: applied permissions', 20_000);
    for (const response of [await withBasic(), await withToken()]) {
      assert.is(response.status, 403);
      assert.is(await errorCode(response), 'DENIED');
    }
    assert.is(wharf.child.exitCode, null);
  } finally {
    await terminate(wharf.child);
  }
});

test.run();
