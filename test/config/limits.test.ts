import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { configFile, problem } from '../helpers/config.js';
import { runCli, tempDir } from '../helpers/server.js';

// Values Node cannot hold or a typo would turn into something else: each stops start-up with one
// message naming its key.

const local = 'repositories:\n  docker-local: { type: local }\n';

async function serve(yaml: string): Promise<{ code: number | null; stderr: string }> {
  const dir = await tempDir('wharf-limits-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, `dataDir: ${join(dir, 'data')}\nlisteners: [{ address: 127.0.0.1, port: 0 }]\nauth: { enabled: false }\nlog: { access: false }\n${yaml}`);
  return runCli(['serve', '--config', file], process.env, undefined, 60_000);
}

test('a duration that ends up in a timer is at most 24d: serve stops with one line naming the key', async () => {
  const cases: [string, string, string][] = [
    [`${local}gc: { interval: 30d }\n`, 'gc.interval', '30d'],
    [`${local}storage: { blobs: { driver: s3, endpoint: "http://127.0.0.1:1", bucket: abc, timeouts: { response: 25d } } }\n`, 'storage.blobs.timeouts.response', '25d'],
    [`${local}storage: { metadata: { driver: postgres, url: "postgres://127.0.0.1:1/db", timeouts: { response: 30d } } }\n`, 'storage.metadata.timeouts.response', '30d'],
    [`${local}  hub: { type: remote, url: "https://hub.example", timeouts: { connect: 600h } }\n`, 'repositories.hub.timeouts.connect', '600h'],
  ];
  const results = await Promise.all(cases.map(([yaml]) => serve(yaml)));
  results.forEach((result, i) => {
    const [, key, value] = cases[i]!;
    assert.is(result.code, 2, result.stderr);
    assert.equal(result.stderr.trimEnd().split('\n'), [`wharf: config error: ${key}: at most 24d (Node's timers hold no longer), got "${value}"`]);
  });
  // 24d itself is accepted.
  assert.is((await problem(`${local}gc: { interval: 24d, grace: foo }\n`)), 'gc.grace: expected a duration like 30s, 10m or 1h, got "foo"');
});

test('an unterminated or unsupported ${…} reference is a config error naming the key, never taken literally', async () => {
  const env = { NOPE: 'x', X: 'y' };
  const expected = (key: string) => `${key}: unsupported \${…} reference: write \${NAME} (letters, digits and _, no default values), or $\${ for a literal \${`;
  assert.is(await problem(`${local}  hub: { type: remote, url: "https://hub.example", username: u, password: "\${NOPE" }\n`, env), expected('repositories.hub.password'));
  assert.is(await problem(`${local}  hub: { type: remote, url: "https://hub.example", username: u, password: "\${X:-d}" }\n`, env), expected('repositories.hub.password'));
  assert.is(await problem(`${local}  hub: { type: remote, url: "https://hub.example", username: "\${lower-case}", password: p }\n`, env), expected('repositories.hub.username'));
  // $${ stays the escape of a literal ${, whatever follows it.
  assert.is(loadConfig(await configFile(`dataDir: "/x/$\${X:-d}"\n${local}`), {}, env).dataDir, '/x/${X:-d}');
  // The message does not repeat the value (it may be most of a secret).
  assert.not.match(await problem(`${local}  hub: { type: remote, url: "https://hub.example", username: u, password: "hunter2\${" }\n`, env), 'hunter2');
});

test.run();
