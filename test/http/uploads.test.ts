import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { blob } from '../helpers/images.js';
import { errorCode, heldChunk, pushBlob } from '../helpers/registry.js';
import { storedBlobs, storedSessions } from '../helpers/stored.js';
import { startWharf, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string;
const name = 'docker-local/team/app';

test.before(async () => {
  server = await startWharf();
  base = server.url;
});
test.after(async () => server.cleanup());

async function startSession(): Promise<{ location: string; response: Response }> {
  const response = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  assert.is(response.status, 202);
  return { location: response.headers.get('location')!, response };
}

async function blobBody(digest: string): Promise<Buffer> {
  const response = await fetch(`${base}/v2/${name}/blobs/${digest}`);
  assert.is(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(join(server.dataDir, dir), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
}

test('monolithic POST ?digest= stores the blob and answers 201 with Location and digest', async () => {
  const item = blob(randomBytes(5000));
  const response = await pushBlob(base, name, item);
  assert.is(response.headers.get('location'), `/v2/${name}/blobs/${item.digest}`);
  assert.is(response.headers.get('docker-content-digest'), item.digest);
  assert.equal(await blobBody(item.digest), item.bytes);
});

test('POST then PUT with the whole body', async () => {
  const item = blob(randomBytes(3000));
  const { location, response } = await startSession();
  assert.match(location, new RegExp(`^/v2/${name}/blobs/uploads/[0-9a-f-]{36}$`));
  assert.is(response.headers.get('range'), '0-0');
  assert.ok(response.headers.get('docker-upload-uuid'));
  const put = await fetch(`${base}${location}?digest=${item.digest}`, { method: 'PUT', body: item.bytes });
  assert.is(put.status, 201);
  assert.equal(await blobBody(item.digest), item.bytes);
});

test('chunked: PATCH with Content-Range, status GET, PATCH without range, PUT with empty body', async () => {
  const item = blob(randomBytes(10_000));
  const { location } = await startSession();
  const first = await fetch(`${base}${location}`, {
    method: 'PATCH', body: item.bytes.subarray(0, 4000), headers: { 'Content-Range': '0-3999', 'Content-Type': 'application/octet-stream' },
  });
  assert.is(first.status, 202);
  assert.is(first.headers.get('range'), '0-3999');
  const status = await fetch(`${base}${first.headers.get('location')}`);
  assert.is(status.status, 204);
  assert.is(status.headers.get('range'), '0-3999');
  // Chunked transfer encoding with no length, as podman sends it.
  const rest = item.bytes.subarray(4000);
  const second = await fetch(`${base}${location}`, {
    method: 'PATCH',
    body: new ReadableStream({ start(controller) { controller.enqueue(rest.subarray(0, 100)); controller.enqueue(rest.subarray(100)); controller.close(); } }),
    duplex: 'half',
  } as RequestInit);
  assert.is(second.status, 202);
  assert.is(second.headers.get('range'), '0-9999');
  const put = await fetch(`${base}${location}?digest=${item.digest}`, { method: 'PUT' });
  assert.is(put.status, 201);
  assert.equal(await blobBody(item.digest), item.bytes);
});

test('an out-of-order chunk is refused with 416 and the upload keeps its bytes', async () => {
  const { location } = await startSession();
  await fetch(`${base}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 1), headers: { 'Content-Range': '0-9' } });
  const gap = await fetch(`${base}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 2), headers: { 'Content-Range': '20-29' } });
  assert.is(gap.status, 416);
  assert.is(await errorCode(gap), 'BLOB_UPLOAD_INVALID');
  // The 416 says where the upload stands, as the spec shows it: the client resumes from there.
  assert.is(gap.headers.get('location'), location);
  assert.is(gap.headers.get('range'), '0-9');
  const overlap = await fetch(`${base}${location}`, { method: 'PATCH', body: Buffer.alloc(5, 2), headers: { 'Content-Range': '5-9' } });
  assert.is(overlap.status, 416);
  assert.is(overlap.headers.get('range'), '0-9');
  const status = await fetch(`${base}${location}`);
  assert.is(status.headers.get('range'), '0-9');
  const malformed = await fetch(`${base}${location}`, { method: 'PATCH', body: 'x', headers: { 'Content-Range': 'ten-eleven' } });
  assert.is(malformed.status, 400, 'malformed is a bad request; 416 is for out-of-order ranges only');
});

test('a chunk sent while another of the same upload is still arriving: 416 with the upload\'s Location and Range, and the upload goes on', async () => {
  const { location } = await startSession();
  const meant = blob(randomBytes(24 << 20));
  const held = heldChunk(`${base}${location}`, meant.bytes);
  try {
    await held.reading;
    const second = await fetch(`${base}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 2) });
    assert.is(second.status, 416);
    assert.is(await errorCode(second), 'BLOB_UPLOAD_INVALID');
    assert.is(second.headers.get('location'), location);
    // What the upload holds at that moment, as a status request would say (the first chunk's bytes stored so far).
    const range = /^0-(\d+)$/.exec(second.headers.get('range') ?? '');
    assert.ok(range && Number(range[1]) < meant.bytes.length, `Range ${second.headers.get('range')}`);
  } finally {
    held.resume();
  }
  assert.is((await held.response).status, 202);
  const done = await fetch(`${base}${location}?digest=${meant.digest}`, { method: 'PUT' });
  assert.is(done.status, 201, 'nothing of the refused chunk is in the upload');
  assert.ok((await blobBody(meant.digest)).equals(meant.bytes));
});

test('a chunk shorter or longer than its Content-Range is 400 SIZE_INVALID and nothing of it is kept', async () => {
  const item = blob(randomBytes(30));
  const { location } = await startSession();
  await fetch(`${base}${location}`, { method: 'PATCH', body: item.bytes.subarray(0, 10), headers: { 'Content-Range': '0-9' } });
  const short = await fetch(`${base}${location}`, { method: 'PATCH', body: item.bytes.subarray(10, 20), headers: { 'Content-Range': '10-29' } });
  assert.is(short.status, 400, 'a length that is not the range\'s is SIZE_INVALID, as the spec and Distribution say; 416 is for order');
  assert.is(await errorCode(short), 'SIZE_INVALID');
  const long = await fetch(`${base}${location}`, { method: 'PATCH', body: item.bytes.subarray(10, 30), headers: { 'Content-Range': '10-14' } });
  assert.is(long.status, 400);
  assert.is(await errorCode(long), 'SIZE_INVALID');
  assert.is(long.headers.get('location'), location);
  assert.is(long.headers.get('range'), '0-9', 'the refusal says the upload stands where it stood');
  assert.is((await fetch(`${base}${location}`)).headers.get('range'), '0-9');
  // The upload goes on from its last whole chunk: the digest proves no refused byte stayed.
  await fetch(`${base}${location}`, { method: 'PATCH', body: item.bytes.subarray(10), headers: { 'Content-Range': '10-29' } });
  const put = await fetch(`${base}${location}?digest=${item.digest}`, { method: 'PUT' });
  assert.is(put.status, 201);
  assert.equal(await blobBody(item.digest), item.bytes);
});

test('PUT with a final chunk completes a chunked upload', async () => {
  const item = blob(randomBytes(2000));
  const { location } = await startSession();
  await fetch(`${base}${location}`, { method: 'PATCH', body: item.bytes.subarray(0, 1500) });
  const early = await fetch(`${base}${location}?digest=${item.digest}`, { method: 'PUT', body: item.bytes.subarray(1000), headers: { 'Content-Range': '1000-1999' } });
  assert.is(early.status, 416, 'a final chunk out of order is refused as a PATCH is, and the upload goes on');
  assert.is(early.headers.get('range'), '0-1499');
  const put = await fetch(`${base}${location}?digest=${item.digest}`, { method: 'PUT', body: item.bytes.subarray(1500), headers: { 'Content-Range': '1500-1999' } });
  assert.is(put.status, 201);
  assert.equal(await blobBody(item.digest), item.bytes);
});

test('a digest mismatch is DIGEST_INVALID and keeps nothing', async () => {
  const before = await storedBlobs(server);
  const bytes = randomBytes(1000);
  const wrong = digestOf(randomBytes(10));
  const monolithic = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: bytes });
  assert.is(monolithic.status, 400);
  assert.is(await errorCode(monolithic), 'DIGEST_INVALID');
  const { location } = await startSession();
  await fetch(`${base}${location}`, { method: 'PATCH', body: bytes });
  const put = await fetch(`${base}${location}?digest=${wrong}`, { method: 'PUT' });
  assert.is(await errorCode(put), 'DIGEST_INVALID');
  assert.is((await fetch(`${base}${location}`)).status, 404, 'the session is gone');
  assert.is((await fetch(`${base}/v2/${name}/blobs/${wrong}`, { method: 'HEAD' })).status, 404);
  assert.equal(await storedBlobs(server), before);
  assert.equal(await filesUnder('tmp'), []);
  assert.not.ok((await storedSessions(server)).includes(location.split('/').pop()!), 'the session bytes are gone');
});

test('PUT without a digest, or with a malformed one, is DIGEST_INVALID', async () => {
  const { location } = await startSession();
  assert.is(await errorCode(await fetch(`${base}${location}`, { method: 'PUT' })), 'DIGEST_INVALID');
  assert.is(await errorCode(await fetch(`${base}${location}?digest=sha256:nothex`, { method: 'PUT' })), 'DIGEST_INVALID');
});

test('sha512 digests are verified and served', async () => {
  const bytes = randomBytes(4096);
  const digest = digestOf(bytes, 'sha512');
  const monolithic = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes });
  assert.is(monolithic.status, 201);
  assert.equal(await blobBody(digest), bytes);
  const other = randomBytes(100);
  const { location } = await startSession();
  await fetch(`${base}${location}`, { method: 'PATCH', body: other });
  assert.is((await fetch(`${base}${location}?digest=${digestOf(other, 'sha512')}`, { method: 'PUT' })).status, 201);
});

test('DELETE cancels an upload; unknown sessions are BLOB_UPLOAD_UNKNOWN', async () => {
  const { location } = await startSession();
  assert.is((await fetch(`${base}${location}`, { method: 'DELETE' })).status, 204);
  const after = await fetch(`${base}${location}`);
  assert.is(after.status, 404);
  assert.is(await errorCode(after), 'BLOB_UPLOAD_UNKNOWN');
  const bogus = await fetch(`${base}/v2/${name}/blobs/uploads/00000000-0000-4000-8000-000000000000`, { method: 'PATCH', body: 'x' });
  assert.is(await errorCode(bogus), 'BLOB_UPLOAD_UNKNOWN');
  const otherImage = await startSession();
  const stolen = await fetch(`${base}${otherImage.location.replace('team/app', 'team/other')}`);
  assert.is(stolen.status, 404, 'a session belongs to its image');
});

test('cross-repository mount answers 201 when the source has the blob, else falls back to 202', async () => {
  const item = blob(randomBytes(700));
  await pushBlob(base, 'docker-local/source/img', item);
  const mounted = await fetch(`${base}/v2/${name}/blobs/uploads/?mount=${item.digest}&from=docker-local/source/img`, { method: 'POST' });
  assert.is(mounted.status, 201);
  assert.is(mounted.headers.get('location'), `/v2/${name}/blobs/${item.digest}`);
  assert.equal(await blobBody(item.digest), item.bytes);
  const missing = digestOf(randomBytes(5));
  const fallback = await fetch(`${base}/v2/docker-local/x/blobs/uploads/?mount=${missing}&from=docker-local/source/img`, { method: 'POST' });
  assert.is(fallback.status, 202);
  assert.match(fallback.headers.get('location')!, '/blobs/uploads/');
  const wrongSource = await fetch(`${base}/v2/docker-local/y/blobs/uploads/?mount=${item.digest}&from=docker-local/nobody`, { method: 'POST' });
  assert.is(wrongSource.status, 202, 'not mountable from an image that lacks it');
  const noFrom = await fetch(`${base}/v2/docker-local/z/blobs/uploads/?mount=${item.digest}`, { method: 'POST' });
  assert.is(noFrom.status, 201, 'without from: mountable from the same repository');
});

test('blob HEAD, GET with Range, DELETE', async () => {
  const item = blob(randomBytes(1000));
  await pushBlob(base, name, item);
  const head = await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.is(head.headers.get('content-length'), '1000');
  assert.is(head.headers.get('docker-content-digest'), item.digest);
  const partial = await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { headers: { Range: 'bytes=100-199' } });
  assert.is(partial.status, 206);
  assert.is(partial.headers.get('content-range'), 'bytes 100-199/1000');
  assert.equal(Buffer.from(await partial.arrayBuffer()), item.bytes.subarray(100, 200));
  const tail = await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { headers: { Range: 'bytes=990-' } });
  assert.equal(Buffer.from(await tail.arrayBuffer()), item.bytes.subarray(990));
  const suffix = await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { headers: { Range: 'bytes=-5' } });
  assert.equal(Buffer.from(await suffix.arrayBuffer()), item.bytes.subarray(995));
  const beyond = await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { headers: { Range: 'bytes=5000-' } });
  assert.is(beyond.status, 416);
  assert.is(beyond.headers.get('content-range'), 'bytes */1000');
  assert.is((await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { method: 'DELETE' })).status, 202);
  const gone = await fetch(`${base}/v2/${name}/blobs/${item.digest}`);
  assert.is(gone.status, 404);
  assert.is(await errorCode(gone), 'BLOB_UNKNOWN');
  assert.is((await fetch(`${base}/v2/${name}/blobs/${item.digest}`, { method: 'DELETE' })).status, 404);
});

test('the empty blob can be pushed and pulled', async () => {
  const empty = blob(Buffer.alloc(0));
  await pushBlob(base, name, empty);
  const response = await fetch(`${base}/v2/${name}/blobs/${empty.digest}`);
  assert.is(response.status, 200);
  assert.is(response.headers.get('content-length'), '0');
  assert.is((await response.arrayBuffer()).byteLength, 0);
});

test('a blob is readable only from the images it was pushed to', async () => {
  const item = blob(randomBytes(100));
  await pushBlob(base, name, item);
  assert.is((await fetch(`${base}/v2/docker-local/elsewhere/blobs/${item.digest}`)).status, 404);
});

test('the same bytes pushed to two images are stored once', async () => {
  const item = blob(randomBytes(321));
  await pushBlob(base, 'docker-local/one', item);
  await pushBlob(base, 'docker-local/two', item);
  const matches = (await storedBlobs(server)).filter((digest) => digest === item.digest);
  assert.is(matches.length, 1);
});

test.run();
