import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob } from '../helpers/images.js';
import { pushBlob } from '../helpers/registry.js';
import { startWharf } from '../helpers/server.js';

// proxy.offload from Wharf's side: a blob GET is handed to the proxy only when the request comes
// from a trusted proxy that offers it (X-Sendfile-Type), and only for a committed blob file. The
// live nginx and Apache runs are in test/edge/proxy-live.test.ts.

const layer = blob(randomBytes(300_000));
const path = (base: string) => `${base}/v2/docker-local/team/app/blobs/${layer.digest}`;
const hex = layer.digest.slice('sha256:'.length);

test('from a trusted proxy that offers it: X-Accel-Redirect or X-Sendfile naming the file, no body, the same headers', async () => {
  const wharf = await startWharf({ trustedProxies: ['127.0.0.1'], proxy: { offload: true }, storage: {} });
  try {
    await pushBlob(wharf.url, 'docker-local/team/app', layer);
    const accel = await fetch(path(wharf.url), { headers: { 'X-Sendfile-Type': 'X-Accel-Redirect', Range: 'bytes=0-9' } });
    assert.is(accel.status, 200);
    assert.is(accel.headers.get('x-accel-redirect'), `/_wharf/blobs/sha256/${hex.slice(0, 2)}/${hex}`);
    assert.is(accel.headers.get('docker-content-digest'), layer.digest);
    assert.is(accel.headers.get('etag'), `"${layer.digest}"`);
    assert.is(accel.headers.get('content-type'), 'application/octet-stream');
    assert.is((await accel.arrayBuffer()).byteLength, 0);
    const sendfile = await fetch(path(wharf.url), { headers: { 'X-Sendfile-Type': 'X-Sendfile' } });
    assert.is(sendfile.headers.get('x-sendfile'), join(wharf.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
    await sendfile.arrayBuffer();
    // Without the offer (a client that reaches Wharf directly), Wharf sends the bytes.
    const direct = await fetch(path(wharf.url));
    assert.is(direct.headers.get('x-accel-redirect'), null);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(layer.bytes));
    // A blob Wharf does not hold is Wharf's own 404, never a name for the proxy to look up.
    const missing = await fetch(path(wharf.url).replace(hex, 'f'.repeat(64)), { headers: { 'X-Sendfile-Type': 'X-Accel-Redirect' } });
    assert.is(missing.status, 404);
    assert.is(missing.headers.get('x-accel-redirect'), null);
  } finally {
    await wharf.cleanup();
  }
});

test('from anyone else the offer is ignored; with offload off it is too', async () => {
  for (const options of [{ trustedProxies: ['10.9.9.9'], proxy: { offload: true } }, { trustedProxies: ['127.0.0.1'] }]) {
    const wharf = await startWharf({ ...options, storage: {} });
    try {
      await pushBlob(wharf.url, 'docker-local/team/app', layer);
      const answer = await fetch(path(wharf.url), { headers: { 'X-Sendfile-Type': 'X-Sendfile' } });
      assert.is(answer.headers.get('x-sendfile'), null, JSON.stringify(options));
      assert.ok(Buffer.from(await answer.arrayBuffer()).equals(layer.bytes));
    } finally {
      await wharf.cleanup();
    }
  }
});

test.run();
