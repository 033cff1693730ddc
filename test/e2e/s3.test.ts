import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { errorCode, pushBlob } from '../helpers/registry.js';
import { s3Storage } from '../helpers/s3.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { switchable, type Switchable } from '../helpers/switchable.js';

// The S3 driver end to end against an S3-compatible server (npm's s3rver): blobs larger than one
// multipart part, written in one request and in chunks, read back whole and by range; presigned
// redirects; an unreachable endpoint named at start.

const mib = 1 << 20;

async function bytesOf(url: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const response = await fetch(url, { headers });
  assert.ok(response.ok, `${url}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

let wharf: TestServer;
test.before(async () => { wharf = await startWharf({ storage: { blobs: await s3Storage() } }); });
test.after(() => wharf.cleanup());

test('a 40 MiB blob pushed in one request is written in several parts and reads back whole and by range', async () => {
  const big = blob(randomBytes(40 * mib));
  await pushBlob(wharf.url, 'docker-local/big/one', big);
  const url = `${wharf.url}/v2/docker-local/big/one/blobs/${big.digest}`;
  assert.ok((await bytesOf(url)).equals(big.bytes));
  const from = 17 * mib - 3;
  assert.ok((await bytesOf(url, { Range: `bytes=${from}-${from + mib}` })).equals(big.bytes.subarray(from, from + mib + 1)));
});

test('a chunked upload of 26 MiB in three PATCHes is finished into one object', async () => {
  const big = blob(randomBytes(26 * mib));
  const start = await fetch(`${wharf.url}/v2/docker-local/big/chunked/blobs/uploads/`, { method: 'POST' });
  let location = new URL(start.headers.get('location')!, wharf.url);
  for (const [from, to] of [[0, 10 * mib], [10 * mib, 20 * mib], [20 * mib, 26 * mib]] as const) {
    const patch = await fetch(location, { method: 'PATCH', body: big.bytes.subarray(from, to), headers: { 'Content-Range': `${from}-${to - 1}` } });
    assert.is(patch.status, 202, await patch.text());
    assert.is(patch.headers.get('range'), `0-${to - 1}`);
    location = new URL(patch.headers.get('location')!, wharf.url);
  }
  location.searchParams.set('digest', big.digest);
  assert.is((await fetch(location, { method: 'PUT' })).status, 201);
  assert.ok((await bytesOf(`${wharf.url}/v2/docker-local/big/chunked/blobs/${big.digest}`)).equals(big.bytes));
});

test('redirect: true answers blob GETs with a 307 to a presigned URL on the object store, which serves the bytes', async () => {
  const storage = { blobs: await s3Storage({ redirect: true }) };
  const redirecting = await startWharf({ storage });
  try {
    const item = blob(randomBytes(3 * mib));
    await pushBlob(redirecting.url, 'docker-local/team/app', item);
    const url = `${redirecting.url}/v2/docker-local/team/app/blobs/${item.digest}`;
    const answer = await fetch(url, { redirect: 'manual' });
    assert.is(answer.status, 307);
    assert.is(answer.headers.get('docker-content-digest'), item.digest);
    const location = new URL(answer.headers.get('location')!);
    assert.is(location.origin, storage.blobs.endpoint, 'the client goes to the object store');
    assert.ok(location.searchParams.has('X-Amz-Signature'), 'with a signature, not the credentials');
    assert.not.match(location.href, 'S3RVER:');
    assert.ok((await bytesOf(location.href)).equals(item.bytes));
    assert.ok((await bytesOf(location.href, { Range: 'bytes=5-9' })).equals(item.bytes.subarray(5, 10)));
    // A HEAD is answered by Wharf itself; an unknown digest is still BLOB_UNKNOWN, never a redirect.
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    assert.is(head.status, 200);
    assert.is(head.headers.get('content-length'), String(item.bytes.length));
    const unknown = await fetch(`${redirecting.url}/v2/docker-local/team/app/blobs/sha256:${'0'.repeat(64)}`, { redirect: 'manual' });
    assert.is(unknown.status, 404);
  } finally {
    await redirecting.cleanup();
  }
});

test('an S3 endpoint that cannot be reached stops start-up with one line naming storage.blobs.endpoint', async () => {
  const dir = await tempDir();
  const port = await freePort();
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, [
    `dataDir: ${dir}/data`,
    'listeners: [{ address: 127.0.0.1, port: 0 }]',
    `storage: { blobs: { driver: s3, endpoint: "http://127.0.0.1:${port}", region: us-east-1, bucket: wharf-blobs, accessKeyId: k, secretAccessKey: s3cr3t-key, forcePathStyle: true } }`,
    'repositories: { docker-local: { type: local } }',
    'auth: { enabled: false }',
  ].join('\n'));
  const result = await runCli(['serve', '--config', config]);
  assert.is(result.code, 1);
  assert.match(result.stderr, /storage\.blobs\.endpoint: .*127\.0\.0\.1/);
  assert.not.match(result.stderr, 's3cr3t-key');
});

test('a bucket that does not exist, or credentials the store refuses, stop start-up with one line naming that key', async () => {
  const storage = await s3Storage();
  const dir = await tempDir();
  const startWith = async (blobs: Record<string, unknown>) => {
    const config = join(dir, 'wharf.yaml');
    await writeFile(config, JSON.stringify({
      dataDir: join(dir, 'data'), listeners: [{ address: '127.0.0.1', port: 0 }], storage: { blobs: { ...storage, ...blobs } },
      repositories: { 'docker-local': { type: 'local' } }, auth: { enabled: false },
    }));
    return runCli(['serve', '--config', config]);
  };
  const noBucket = await startWith({ bucket: 'no-such-bucket' });
  assert.is(noBucket.code, 1);
  assert.match(noBucket.stderr, /storage\.blobs\.bucket: .*bucket no-such-bucket does not exist/);
  const refused = await startWith({ accessKeyId: 'NOT-A-KEY', secretAccessKey: 's3cr3t-key' });
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /storage\.blobs\.accessKeyId: .*HTTP 403.*credentials/);
  assert.not.match(refused.stderr, 's3cr3t-key');
});

/** A server that reaches its object store through a switchable pass-through, with 1 s timeouts; its log lines. */
async function behindSwitch(): Promise<{ store: Switchable; wharf: TestServer; lines: string[] }> {
  const storage = await s3Storage();
  const store = await switchable(storage.endpoint);
  const lines: string[] = [];
  const wharf = await startWharf({ storage: { blobs: { ...storage, endpoint: store.url, timeouts: { connect: '1s', response: '1s' } } }, log: (line) => lines.push(line) });
  return { store, wharf, lines };
}

test('an object store that stops answering: requests get 503 UNAVAILABLE within the timeouts, and work again once it is back', async () => {
  const { store, wharf, lines } = await behindSwitch();
  try {
    const item = blob(randomBytes(100_000));
    assert.is((await pushBlob(wharf.url, 'docker-local/team/app', item)).status, 201);
    store.mode = 'silent';
    const pull = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${item.digest}`);
    assert.is(pull.status, 503);
    assert.is(await errorCode(pull), 'UNAVAILABLE');
    const other = blob(randomBytes(1000));
    const push = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/uploads/?digest=${other.digest}`, { method: 'POST', body: other.bytes });
    assert.is(push.status, 503);
    // A code for the caller; the endpoint, the bucket and the settings stay in the log.
    assert.equal((await push.json() as { errors: unknown[] }).errors[0], { code: 'UNAVAILABLE', message: 'the object store is not reachable; retry later', detail: { reason: 'ETIMEDOUT' } });
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 503);
    store.mode = 'forward';
    const again = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${item.digest}`);
    assert.is(again.status, 200);
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(item.bytes));
    assert.is(lines.filter((line) => line.includes('the object store is not reachable (no answer within storage.blobs.timeouts)')).length, 1, lines.join('\n'));
    assert.is(lines.filter((line) => line.includes('the object store is reachable again')).length, 1);
    assert.not.ok(lines.some((line) => line.includes('internal error')), lines.join('\n'));
  } finally {
    await wharf.cleanup();
    await store.close();
  }
});

test('an S3 endpoint that accepts connections and never answers stops start-up within its timeouts, naming storage.blobs.endpoint', async () => {
  const store = await switchable((await s3Storage()).endpoint);
  store.mode = 'silent';
  try {
    const dir = await tempDir();
    const config = join(dir, 'wharf.yaml');
    await writeFile(config, JSON.stringify({
      dataDir: join(dir, 'data'), listeners: [{ address: '127.0.0.1', port: 0 }], auth: { enabled: false },
      storage: { blobs: { driver: 's3', endpoint: store.url, bucket: 'wharf-blobs', accessKeyId: 'k', secretAccessKey: 's', timeouts: { connect: '1s', response: '1s' } } },
      repositories: { 'docker-local': { type: 'local' } },
    }));
    const result = await runCli(['serve', '--config', config]);
    assert.is(result.code, 1);
    assert.match(result.stderr, `storage.blobs.endpoint: cannot connect to s3 at ${store.url}: no answer within storage.blobs.timeouts`);
  } finally {
    await store.close();
  }
});

test('an object store that stops sending a blob body midway: the GET is cut off (a truncated body) within the timeouts, logged once', async () => {
  const { store, wharf, lines } = await behindSwitch();
  try {
    const big = blob(randomBytes(48 * mib));
    assert.is((await pushBlob(wharf.url, 'docker-local/team/app', big)).status, 201);
    const response = await fetch(`${wharf.url}/v2/docker-local/team/app/blobs/${big.digest}`, { signal: AbortSignal.timeout(30_000) });
    assert.is(response.status, 200);
    const reader = response.body!.getReader();
    let received = (await reader.read()).value!.length;
    // The headers and the first bytes came; now the store sends nothing more.
    store.mode = 'stalled';
    const failure = await (async () => {
      try {
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) received += chunk.value.length;
        return null;
      } catch (error) {
        return error as Error;
      }
    })();
    assert.ok(failure, 'the body does not end as if whole');
    assert.is.not(failure!.name, 'TimeoutError', 'cut off by Wharf, not by the test waiting');
    assert.ok(received < big.bytes.length, `${received} bytes of ${big.bytes.length}`);
    assert.is(lines.filter((line) => line.includes('the object store is not reachable (no answer within storage.blobs.timeouts)')).length, 1, lines.join('\n'));
  } finally {
    store.mode = 'forward';
    await wharf.cleanup();
    await store.close();
  }
});

test.run();
