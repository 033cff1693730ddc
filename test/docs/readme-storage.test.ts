import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSqlite } from '../../src/store/metadata/sqlite.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, makeImage } from '../helpers/images.js';
import { s3Keys, s3Storage } from '../helpers/s3.js';
import { pushBlob, pushImage } from '../helpers/registry.js';
import { startWharf, tempDir } from '../helpers/server.js';

// README, "Storage and durability": the claims no other suite checked.

test('SQLite: WAL mode, and synchronous=FULL on the connection that writes, also when the file is opened again', async () => {
  const path = join(await tempDir(), 'meta.db');
  // better-sqlite3 builds SQLite with NORMAL as the default in WAL mode: a database opened again
  // (already in WAL mode) would get it unless Wharf asks for FULL itself.
  for (const round of ['created', 'opened again']) {
    const db = openSqlite(path);
    try {
      const [mode] = await db.transaction((sql) => sql.all<{ journal_mode: string }>('PRAGMA journal_mode'));
      const [sync] = await db.transaction((sql) => sql.all<{ synchronous: number }>('PRAGMA synchronous'));
      assert.is(mode!.journal_mode, 'wal', round);
      assert.is(sync!.synchronous, 2, `${round}: 2 is FULL`);
    } finally {
      await db.close();
    }
  }
});

test('manifest bytes are cached; a tag moved by another node is served moved at once (SQLite: the kept tag is dropped at the commit)', async () => {
  const a = await startWharf();
  // The same database and blobs: on SQLite and the filesystem, the same data directory.
  const b = await startWharf({ storage: a.storage, ...('metadata' in a.storage ? {} : { dataDir: a.dataDir }) });
  try {
    const first = makeImage();
    const second = makeImage();
    const digestOn = async (base: string) => (await fetch(`${base}/v2/docker-local/team/app/manifests/latest`, { headers: { Accept: OCI_MANIFEST } })).headers.get('docker-content-digest');
    await pushImage(a.url, 'docker-local/team/app', first, 'latest');
    assert.is(await digestOn(b.url), first.digest, 'B reads the tag (and caches the manifest)');
    await pushImage(a.url, 'docker-local/team/app', second, 'latest');
    assert.is(await digestOn(b.url), second.digest, 'B asks the database which digest the tag names');
  } finally {
    await b.stop();
    await a.cleanup();
  }
});

test('S3: each PATCH of a session is an object <prefix>/uploads/<uuid>/<offset, 16 digits> beside a .session marker; the finished blob is one object under <prefix>/blobs/', async () => {
  const blobs = await s3Storage({ prefix: 'team/registry' });
  const wharf = await startWharf({ storage: { blobs } });
  try {
    const item = blob(randomBytes(300_000));
    const start = await fetch(`${wharf.url}/v2/docker-local/app/blobs/uploads/`, { method: 'POST' });
    let location = new URL(start.headers.get('location')!, wharf.url);
    const uuid = /\/blobs\/uploads\/([^/?]+)/.exec(location.pathname)![1]!;
    for (const [from, to] of [[0, 100_000], [100_000, 300_000]] as const) {
      const patch = await fetch(location, { method: 'PATCH', body: item.bytes.subarray(from, to), headers: { 'Content-Range': `${from}-${to - 1}` } });
      assert.is(patch.status, 202);
      location = new URL(patch.headers.get('location')!, wharf.url);
    }
    assert.equal((await s3Keys(blobs)).filter((key) => key.includes('/uploads/')).sort(), [`team/registry/uploads/${uuid}/.session`, `team/registry/uploads/${uuid}/0000000000000000`, `team/registry/uploads/${uuid}/0000000000100000`]);
    location.searchParams.set('digest', item.digest);
    assert.is((await fetch(location, { method: 'PUT' })).status, 201);
    const hex = item.digest.slice('sha256:'.length);
    const keys = await s3Keys(blobs);
    assert.ok(keys.some((key) => key.startsWith('team/registry/blobs/') && key.endsWith(hex)), keys.join(' '));
    assert.equal(keys.filter((key) => key.includes('/uploads/')), [], 'the session\'s objects are gone');
  } finally {
    await wharf.cleanup();
  }
});

/** The S3 call an HTTP request to the object store makes (path-style: /<bucket>[/<key>]). */
function s3Call(method: string, path: string, query: URLSearchParams, headers: IncomingHttpHeaders): string {
  const object = path.split('/').filter(Boolean).length > 1;
  if (method === 'HEAD') return object ? 'HeadObject' : 'HeadBucket';
  if (method === 'GET') return object ? 'GetObject' : query.has('uploads') ? 'ListMultipartUploads' : 'ListObjectsV2';
  if (method === 'PUT') return headers['x-amz-copy-source'] ? 'CopyObject' : query.has('partNumber') ? 'UploadPart' : 'PutObject';
  if (method === 'POST') return query.has('delete') ? 'DeleteObjects' : query.has('uploads') ? 'CreateMultipartUpload' : 'CompleteMultipartUpload';
  return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
}

/** An HTTP pass-through to the object store that records each S3 call (and its headers) it forwards. */
async function recordingStore(endpoint: string) {
  const target = new URL(endpoint);
  const calls: { call: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url!, endpoint);
    calls.push({ call: s3Call(request.method!, url.pathname, url.searchParams, request.headers), headers: request.headers });
    const onward = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(response);
    });
    onward.on('error', () => response.destroy());
    request.pipe(onward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The calls README's table of S3 permissions lists. */
async function documentedCalls(): Promise<string[]> {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('| S3 call |'), readme.indexOf('On AWS, `HeadObject`'));
  return table.split('\n').slice(2).filter((row) => row.startsWith('|')).flatMap((row) => [...row.split('|')[1]!.matchAll(/`(\w+)`/g)].map((match) => match[1]!));
}

test('S3 permissions: every call a push (whole, chunked, multipart), a pull, readiness and a collection make is in README\'s table; DeleteObjects carries a checksum header', async () => {
  const storage = await s3Storage();
  const store = await recordingStore(storage.endpoint);
  let now = Date.now();
  const wharf = await startWharf({ storage: { blobs: { ...storage, endpoint: store.url } }, storageNow: () => now });
  try {
    const small = blob(randomBytes(1000));
    const big = blob(randomBytes(20 << 20));
    for (const item of [small, big]) assert.is((await pushBlob(wharf.url, 'docker-local/team/app', item)).status, 201);
    // A session of one chunk is copied into place; one of two is streamed.
    for (const cuts of [[300_000], [150_000, 300_000]]) {
      const item = blob(randomBytes(300_000));
      let location = new URL((await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!, wharf.url);
      for (const [i, end] of cuts.entries()) {
        const patch = await fetch(location, { method: 'PATCH', body: item.bytes.subarray(i === 0 ? 0 : cuts[i - 1], end) });
        location = new URL(patch.headers.get('location')!, wharf.url);
      }
      location.searchParams.set('digest', item.digest);
      assert.is((await fetch(location, { method: 'PUT' })).status, 201);
    }
    const pulled = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${small.digest}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(small.bytes));
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 200);
    assert.is((await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${small.digest}`, { method: 'DELETE' })).status, 202);
    now += 2 * 86_400_000;
    assert.ok((await wharf.collectGarbage()).blobs >= 1);
    const seen = [...new Set(store.calls.map(({ call }) => call))].sort();
    const documented = await documentedCalls();
    assert.equal(seen.filter((call) => !documented.includes(call)), [], 'made, but not in README');
    // Aborting a multipart upload needs one that failed or was abandoned: the others all happen here.
    assert.equal(documented.filter((call) => !seen.includes(call)), ['AbortMultipartUpload'], 'in README, but not made');
    const deletes = store.calls.filter(({ call }) => call === 'DeleteObjects');
    assert.ok(deletes.length > 0 && deletes.every(({ headers }) => headers['x-amz-checksum-crc32'] !== undefined));
  } finally {
    await wharf.cleanup();
    await store.close();
  }
});

test.run();
