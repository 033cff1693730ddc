import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { freePort } from '../helpers/ports.js';
import { runCli, tempDir } from '../helpers/server.js';

// storage, gc and uploads: defaults unchanged, every mistake named by its key.

async function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(await tempDir('wharf-config-'), 'wharf.yaml');
  await writeFile(file, `repositories:\n  a: { type: local }\n${text}`);
  return loadConfig(file, {}, env);
}

async function problem(text: string): Promise<string> {
  try {
    await load(text);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

test('s3 and postgres settings are read, with ${ENV} for secrets; path-style is the default with an endpoint', async () => {
  const config = await load([
    'storage:',
    '  blobs: { driver: s3, endpoint: "http://127.0.0.1:9000", bucket: registry, prefix: wharf/prod, accessKeyId: "${KEY}", secretAccessKey: "${SECRET}", redirect: true, timeouts: { response: 2m } }',
    '  metadata: { driver: postgres, url: "postgres://wharf:${PGPASSWORD}@db:5432/wharf" }',
    'gc: { interval: 30m, grace: 2h }',
    'uploads: { expireAfter: 12h }',
    '',
  ].join('\n'), { KEY: 'AKIA', SECRET: 's3cr3t', PGPASSWORD: 'pw' });
  assert.equal(config.storage.blobs, {
    driver: 's3', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', bucket: 'registry', prefix: 'wharf/prod',
    accessKeyId: 'AKIA', secretAccessKey: 's3cr3t', forcePathStyle: true, redirect: true, timeouts: { connect: 10_000, response: 120_000 },
  });
  assert.equal(config.storage.metadata, { driver: 'postgres', url: 'postgres://wharf:pw@db:5432/wharf', timeouts: { connect: 10_000, response: 60_000 } });
  assert.equal(config.gc, { interval: 1_800_000, grace: 7_200_000, uploadsExpireAfter: 43_200_000 });
});

test('each storage mistake is one message naming its key (and never echoes a database URL)', async () => {
  assert.is(await problem('storage: { blobs: { driver: tape } }\n'), 'storage.blobs.driver: expected filesystem or s3, got "tape"');
  assert.is(await problem('storage: { blobs: { driver: s3 } }\n'), 'storage.blobs.bucket: expected a non-empty string, got nothing');
  assert.is(await problem('storage: { blobs: { driver: s3, bucket: My_Bucket } }\n'), 'storage.blobs.bucket: expected an S3 bucket name (3-63 lowercase letters, digits, dots and dashes), got "My_Bucket"');
  assert.match(await problem('storage: { blobs: { driver: s3, bucket: abc, accessKeyId: x } }\n'), /^storage\.blobs\.secretAccessKey: accessKeyId and secretAccessKey go together/);
  assert.is(await problem('storage: { blobs: { driver: s3, bucket: abc, prefix: /lead } }\n'), 'storage.blobs.prefix: expected a key prefix like registry or team/registry (no leading or trailing slash), got "/lead"');
  assert.is(await problem('storage: { blobs: { driver: filesystem, bucket: abc } }\n'), 'storage.blobs.bucket: unknown key (allowed here: driver)');
  assert.is(await problem('storage: { metadata: { driver: mysql } }\n'), 'storage.metadata.driver: expected sqlite or postgres, got "mysql"');
  const message = await problem('storage: { metadata: { driver: postgres, url: "mysql://root:hunter2@db" } }\n');
  assert.is(message, 'storage.metadata.url: expected a URL like postgres://user:password@host:5432/database');
  assert.not.match(message, 'hunter2');
  assert.is(await problem('gc: { grace: soon }\n'), 'gc.grace: expected a duration like 30s, 10m or 1h, got "soon"');
  assert.is(await problem('uploads: { expireAfter: -1 }\n'), 'uploads.expireAfter: expected a duration like 30s, 10m or 1h, got number -1');
  assert.is(await problem('  b: { type: local, gc: { untagged: sometimes } }\n'), 'repositories.b.gc.untagged: expected delete or keep, got "sometimes"');
});

test('a local repository may keep untagged manifests (gc.untagged: keep)', async () => {
  const config = await load('  pinned: { type: local, gc: { untagged: keep } }\n');
  assert.equal(config.repositories.pinned, { type: 'local', blockSchema1: true, gc: { untagged: 'keep' }, maxUniqueTags: 0, platformTags: false });
  assert.equal(config.repositories.a, { type: 'local', blockSchema1: true, gc: { untagged: 'delete' }, maxUniqueTags: 0, platformTags: false });
});

test('a database that cannot be reached at start names the key and the server, never the password', async () => {
  const dir = await tempDir('wharf-config-');
  const port = await freePort();
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, `dataDir: ${join(dir, 'data')}\nlisteners: [{ address: 127.0.0.1, port: 0 }]\nrepositories:\n  a: { type: local }\nauth: { enabled: false }\nstorage: { metadata: { driver: postgres, url: "postgres://wharf:hunter2@127.0.0.1:${port}/wharf" } }\n`);
  const result = await runCli(['serve', '--config', file]);
  assert.is(result.code, 1);
  assert.match(result.stderr, `storage.metadata.url: cannot connect to postgres at 127.0.0.1:${port}: ECONNREFUSED`);
  assert.not.match(result.stderr, 'hunter2');
});

test("a database the server does not have is named in the server's words, not a bare SQLSTATE", async () => {
  const url = new URL(await postgresDatabase());
  url.pathname = '/no_such_database';
  const dir = await tempDir('wharf-config-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, `dataDir: ${join(dir, 'data')}\nlisteners: [{ address: 127.0.0.1, port: 0 }]\nrepositories:\n  a: { type: local }\nauth: { enabled: false }\nstorage: { metadata: { driver: postgres, url: "${url.href}" } }\n`);
  const result = await runCli(['serve', '--config', file]);
  assert.is(result.code, 1);
  assert.match(result.stderr, `storage.metadata.url: cannot connect to postgres at 127.0.0.1:${url.port}: database "no_such_database" does not exist`);
});

test.run();
