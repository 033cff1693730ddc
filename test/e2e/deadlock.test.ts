import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { OCI_INDEX } from '../../src/oci/mediatypes.js';
import { makeImage, makeIndex } from '../helpers/images.js';
import { pushImage, putManifest } from '../helpers/registry.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { s3Storage } from '../helpers/s3.js';
import { startWharf } from '../helpers/server.js';

// PostgreSQL ends one of two transactions that wait for each other (SQLSTATE 40P01). A push takes
// its children's links, then the tag; deleting a whole image takes the tags, then the links: the
// two can each hold what the other needs next. The interleaving is forced: a third connection
// holds the key the push inserts next, so the push waits holding the child's link while the
// delete takes the tags and waits for that link; then the third lets go.

/** Waits (bounded) until a backend waits for a lock in a statement that starts with `statement`. */
async function waitingIn(admin: pg.Client, statement: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    // `admin` is in a transaction, where pg_stat_activity is read once and then kept: read it afresh.
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const found = await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1", [`${statement}%`]);
    if (found.rows.length > 0) return;
    assert.ok(Date.now() < deadline, `no backend waits in ${statement}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a push of an index and the deletion of its image that deadlock: PostgreSQL ends one, it runs again, neither caller gets an error', async () => {
  const url = await postgresDatabase();
  const lines: string[] = [];
  const wharf = await startWharf({ storage: { blobs: await s3Storage(), metadata: { driver: 'postgres', url } }, log: (line) => lines.push(line) });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const image = makeImage();
    await pushImage(wharf.url, 'docker-local/app', image, 'latest');
    const index = makeIndex([image]);
    await admin.query('BEGIN');
    await admin.query("INSERT INTO manifests (digest, media_type, size, content) VALUES ($1, 'gate', 0, '')", [index.digest]);
    const push = putManifest(wharf.url, 'docker-local/app', 'latest', index.bytes, OCI_INDEX);
    await waitingIn(admin, 'INSERT INTO manifests');
    const removal = fetch(`${wharf.url}/artifactory/docker-local/app`, { method: 'DELETE' });
    await waitingIn(admin, 'DELETE FROM repository_manifests');
    await admin.query('ROLLBACK');
    const [pushed, removed] = await Promise.all([push, removal]);
    const [pushBody, removeBody] = [await pushed.text(), await removed.text()];
    assert.is(removed.status, 204, removeBody);
    // The push ran first (201) or, ended and run again, found its child deleted (400 MANIFEST_BLOB_UNKNOWN).
    assert.ok(pushed.status === 201 || (pushed.status === 400 && pushBody.includes('MANIFEST_BLOB_UNKNOWN')), `${pushed.status} ${pushBody}`);
    // Either way the deletion came last: the image is gone.
    assert.is((await fetch(`${wharf.url}/v2/docker-local/app/tags/list`)).status, 404);
    assert.not.ok(lines.some((line) => line.includes('internal error')), lines.join('\n'));
    assert.ok(lines.some((line) => line.includes('40P01')), `PostgreSQL saw a deadlock: ${lines.join('\n')}`);
  } finally {
    await admin.query('ROLLBACK').catch(() => undefined);
    await admin.end();
    await wharf.cleanup();
  }
});

test.run();
