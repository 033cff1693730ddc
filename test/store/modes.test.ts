import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseDigest } from '../../src/oci/digest.js';
import { collectGarbage, type CollectPolicy } from '../../src/store/gc.js';
import { openStore } from '../../src/store/index.js';
import { blob, makeImage } from '../helpers/images.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, tempDir } from '../helpers/server.js';

// The data directory holds every image and the metadata database, which holds password hashes:
// the directory is created 0750, the database and its -wal and -shm files are 0600, and so is the
// copy a dry run works on.

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const local = { blobs: { driver: 'filesystem' }, metadata: { driver: 'sqlite' } } as const;
const policy: CollectPolicy = { grace: 0, uploadsExpireAfter: 3_600_000, localRepositories: ['docker-local'], untaggedRepositories: ['docker-local'] };

test('a fresh data directory is 0750 and meta.db, -wal and -shm are 0600; a wider meta.db is tightened at start', async () => {
  const dataDir = join(await tempDir(), 'var', 'wharf');
  const options = { dataDir, storage: local };
  const first = await startWharf(options);
  try {
    await pushImage(first.url, 'docker-local/team/app', makeImage(), '1.0'); // the WAL has content
    assert.is(await modeOf(dataDir), 0o750);
    for (const file of ['meta.db', 'meta.db-wal', 'meta.db-shm']) assert.is(await modeOf(join(dataDir, file)), 0o600, file);
    await first.stop();
    await chmod(join(dataDir, 'meta.db'), 0o644);
    const second = await startWharf(options);
    await second.stop();
    assert.is(await modeOf(join(dataDir, 'meta.db')), 0o600, 'tightened');
  } finally {
    await first.cleanup();
  }
});

test("a dry run's copy of the database is 0600 while it runs; a killed dry run's copy is removed at the next start", async () => {
  const dataDir = await tempDir();
  const store = await openStore({ dataDir, ...local, recover: true, log: () => undefined });
  const rehearsals = async () => (await readdir(dataDir)).filter((name) => name.startsWith('.rehearsal-'));
  let seen: number[] = [];
  try {
    await store.lifecycle.write({ repo: 'docker-local', name: 'app' }, Readable.from([Buffer.from('layer')]), parseDigest(blob(Buffer.from('layer')).digest)!);
    await collectGarbage(store, policy, {
      dryRun: true,
      onProgress: async (_, phase) => {
        if (phase !== 'manifests' || seen.length > 0) return;
        seen = await Promise.all((await rehearsals()).map((name) => modeOf(join(dataDir, name, 'meta.db'))));
      },
    });
  } finally {
    await store.close();
  }
  assert.equal(seen, [0o600], 'one copy, its owner\'s alone');
  assert.equal(await rehearsals(), [], 'removed when the dry run ends');
  // Left by dry runs killed before they could remove them: the process named is gone, or unnamed (older releases).
  const dead = spawnSync('true').pid!;
  const running = `.rehearsal-${process.pid}-running`;
  for (const name of [`.rehearsal-${dead}-killed`, '.rehearsal-Ab12Cd', running]) {
    await mkdir(join(dataDir, name), { mode: 0o700 });
    await writeFile(join(dataDir, name, 'meta.db'), 'a copy of the database');
  }
  const next = await startWharf({ dataDir, storage: local });
  await next.stop();
  assert.equal(await rehearsals(), [running], 'only a live dry run keeps its copy');
});

test.run();
