import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { blob, makeImage, type Blob } from '../helpers/images.js';
import { logCollector, type LogCollector } from '../helpers/logs.js';
import { pushImage } from '../helpers/registry.js';
import { startWharf, type TestServer } from '../helpers/server.js';
import { startCountingProxy, type CountingProxy } from '../helpers/upstream.js';
import { s3Client, s3Keys, type S3Settings } from '../helpers/s3.js';

// A cold-pull fill whose write to our own store fails (the disk the blob is spooled to is full or
// read-only; the object store refuses the upload): one warn line names the repository, the blob
// and the cause (a code, never a path, URL or secret), at the moment it fails; clients get the
// whole verified blob or a cut connection, never a wrong body; nothing is kept, so the next pull
// fetches afresh. It is not an upstream error: wharf_upstream_errors_total does not count it.

const run = promisify(execFile);

let upstream: TestServer;
let proxy: CountingProxy;
let wharf: TestServer;
let log: LogCollector;

test.before(async () => {
  upstream = await startWharf();
  proxy = await startCountingProxy(upstream.url);
  log = logCollector();
  wharf = await startWharf({
    repositories: { remote: { type: 'remote', url: `${proxy.url}/api/docker/docker-local` } },
    log: (line) => log.write(line),
  });
});
test.after(async () => {
  await wharf.cleanup();
  await proxy.stop();
  await upstream.cleanup();
});

async function upstreamErrors(): Promise<number> {
  const text = await (await fetch(`${wharf.url}/metrics`)).text();
  return Number(/^wharf_upstream_errors_total\{repository="remote"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** An image in the upstream with one `bytes`-byte layer, its manifest cached in Wharf; returns the layer. */
async function upstreamLayer(name: string, bytes: number): Promise<Blob> {
  const image = makeImage({ share: [blob(randomBytes(bytes))] });
  await pushImage(upstream.url, `docker-local/${name}`, image, '1');
  assert.is((await fetch(`${wharf.url}/v2/remote/${name}/manifests/1`, { headers: { Accept: OCI_MANIFEST } })).status, 200);
  return image.layers[0]!;
}

/** Mounts a tmpfs (`options`) over the data directory's tmp/, where fills spool; returns its unmount. */
async function spoolOn(options: string): Promise<() => Promise<void>> {
  const dir = join(wharf.dataDir, 'tmp');
  await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  return async () => { await run('umount', ['-l', dir]); };
}

/** Reads a response's body; `cut` when the connection was cut before its end. */
async function bodyOf(response: Response): Promise<{ bytes: Buffer; cut: boolean }> {
  const chunks: Buffer[] = [];
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks), cut: false };
      chunks.push(Buffer.from(value));
    }
  } catch {
    return { bytes: Buffer.concat(chunks), cut: true };
  }
}

/** The warn lines about `digest`, once the first is written. */
async function linesAbout(digest: string): Promise<string[]> {
  await log.waitFor((line) => line.includes(digest), 10_000);
  return log.lines.filter((line) => line.includes(digest));
}

/** A pull after the failure: fetched from the upstream again (nothing was kept), and whole. */
async function pulledAfresh(name: string, layer: Blob): Promise<void> {
  const before = proxy.counts['GET blob'] ?? 0;
  const again = await fetch(`${wharf.url}/v2/remote/${name}/blobs/${layer.digest}`);
  assert.is(again.status, 200);
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(layer.bytes));
  assert.is(proxy.counts['GET blob'], before + 1, 'nothing was kept: the next pull fetches the blob again');
}

/** A response's body is the whole blob, or a cut transfer of its beginning: never other bytes. */
function wholeOrCut(got: { bytes: Buffer; cut: boolean }, layer: Blob): void {
  if (!got.cut) assert.ok(got.bytes.equals(layer.bytes), 'a whole body is the blob');
  else assert.ok(layer.bytes.subarray(0, got.bytes.length).equals(got.bytes), 'a cut body is the blob\'s beginning');
}

/** The one warn line about the fill of `name`@`digest`, with its cause `code`, naming no path. */
async function oneLine(name: string, digest: string, code: string): Promise<void> {
  const lines = await linesAbout(digest);
  assert.is(lines.length, 1, `one line:\n${lines.join('\n')}`);
  assert.match(lines[0]!, ` warn remote: blob ${name}@${digest} could not be cached (`);
  assert.match(lines[0]!, new RegExp(`: ${code}$`));
  assert.not.match(lines[0]!, wharf.dataDir);
}

test('the spool disk fills up mid-fill: the line is written then, the client is cut, nothing is kept', async () => {
  const layer = await upstreamLayer('team/full', 8 << 20);
  const errors = await upstreamErrors();
  // The upstream stops after 2 MiB: the writer has had its first batch (1 MiB), more than the disk holds.
  let release!: () => void;
  proxy.holdBlobs = new Promise((resolve) => { release = resolve; });
  proxy.holdBlobsAfter = 2 << 20;
  const unmount = await spoolOn('size=512k');
  try {
    const response = await fetch(`${wharf.url}/v2/remote/team/full/blobs/${layer.digest}`);
    assert.is(response.status, 200, 'the client is receiving the blob');
    const reading = bodyOf(response);
    // Logged when the write fails, while the upstream is still sending (held here).
    await oneLine('team/full', layer.digest, 'ENOSPC');
    release();
    const got = await reading;
    assert.ok(got.cut, 'the client was cut off');
    wholeOrCut(got, layer);
  } finally {
    proxy.holdBlobs = null;
    proxy.holdBlobsAfter = 0;
    release();
    await unmount();
  }
  assert.is(await upstreamErrors(), errors, 'our own storage failing is not an upstream error');
  await pulledAfresh('team/full', layer);
});

test('the disk fills up on the last write, after the digest verified: nothing truncated is committed', async () => {
  // Under 1 MiB, the blob goes to the writer in one batch, when the upstream has ended.
  const layer = await upstreamLayer('team/last', 800 << 10);
  const unmount = await spoolOn('size=512k');
  try {
    const response = await fetch(`${wharf.url}/v2/remote/team/last/blobs/${layer.digest}`);
    assert.is(response.status, 200);
    wholeOrCut(await bodyOf(response), layer);
    await oneLine('team/last', layer.digest, 'ENOSPC');
  } finally {
    await unmount();
  }
  await pulledAfresh('team/last', layer);
});

test('the spool directory is read-only: the pull fails before any byte, one line says why', async () => {
  const layer = await upstreamLayer('team/readonly', 1 << 20);
  const errors = await upstreamErrors();
  const unmount = await spoolOn('ro');
  try {
    const response = await fetch(`${wharf.url}/v2/remote/team/readonly/blobs/${layer.digest}`);
    assert.is(response.status, 500);
    assert.is(((await response.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNKNOWN');
    await oneLine('team/readonly', layer.digest, 'EROFS');
    assert.not.ok(log.lines.some((line) => line.includes('internal error')), 'no second line');
  } finally {
    await unmount();
  }
  assert.is(await upstreamErrors(), errors);
  await pulledAfresh('team/readonly', layer);
});

/**
 * Makes placing blobs fail: on the filesystem a tmpfs over blobs/, on S3 the bucket
 * deleted (PutObject: NoSuchBucket). Returns the cause's code and the undo.
 */
async function refusePlacing(): Promise<{ code: string; undo: () => Promise<void> }> {
  const settings = wharf.storage.blobs as S3Settings | undefined;
  if (!settings) {
    // blobs/ on another file system than tmp/: the rename that places a blob fails.
    const dir = join(wharf.dataDir, 'blobs');
    await run('mount', ['-t', 'tmpfs', 'tmpfs', dir]);
    return { code: 'EXDEV', undo: async () => { await run('umount', ['-l', dir]); } };
  }
  const client = s3Client(settings.endpoint);
  for (const key of await s3Keys(settings)) await client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: key }));
  await client.send(new DeleteBucketCommand({ Bucket: settings.bucket }));
  return {
    code: 'NoSuchBucket',
    undo: async () => {
      await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
      client.destroy();
    },
  };
}

test('the store refuses the verified blob (blobs/ on another disk, S3 bucket gone): whole or cut, one line, nothing kept', async () => {
  const layer = await upstreamLayer('team/refused', 3 << 20);
  const errors = await upstreamErrors();
  const { code, undo } = await refusePlacing();
  try {
    const response = await fetch(`${wharf.url}/v2/remote/team/refused/blobs/${layer.digest}`);
    assert.is(response.status, 200);
    wholeOrCut(await bodyOf(response), layer);
    await oneLine('team/refused', layer.digest, code);
  } finally {
    await undo();
  }
  assert.is(await upstreamErrors(), errors);
  await pulledAfresh('team/refused', layer);
});

test.run();
