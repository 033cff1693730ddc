import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blob } from '../helpers/images.js';
import { pushBlob } from '../helpers/registry.js';
import { spawnWharf, startWharf, tempDir } from '../helpers/server.js';
import { exitOf } from '../helpers/children.js';

// README, "The `wharf` command": SIGTERM or SIGINT stops accepting connections, lets requests in
// flight finish (up to 30 s), then exits. That requests in flight finish is test/e2e/durability's
// SIGTERM test; here, the limit: serve states it when the signal comes, and a request still
// running when it is reached is cut so the shutdown completes (the limit given to close() here,
// not waited for: it is the default close() takes and serve states).

test('SIGTERM: serve says requests in flight have up to 30 s, and exits 0', async () => {
  const wharf = await spawnWharf(await tempDir());
  const exited = exitOf(wharf.child);
  wharf.child.kill('SIGTERM');
  assert.match(await wharf.log.waitFor('SIGTERM: shutting down'), /SIGTERM: shutting down; requests in flight have up to 30 s to finish$/);
  assert.is(await exited, 0);
});

for (const scheme of ['http', 'https'] as const) {
  test(`a download still running when the shutdown limit is reached is cut, and the shutdown completes (${scheme.toUpperCase()}/1.1)`, async () => {
    // A TLS listener speaks HTTP/2 and HTTP/1.1: its HTTP/1.1 connections are not HTTP/2 sessions.
    const wharf = await startWharf({ listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }] });
    const ca = await readFile(wharf.caPath!);
    // Larger than every buffer between the two ends: a reader that stops keeps the response unfinished.
    const item = blob(randomBytes(32 * 1024 * 1024));
    await pushBlob(wharf.url, 'docker-local/app', item);
    const base = wharf.urls[scheme === 'https' ? 1 : 0]!;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      (scheme === 'https' ? httpsRequest : request)(`${base}/v2/docker-local/app/blobs/${item.digest}`, { ca }, resolve).on('error', reject).end();
    });
    response.pause();
    const ended = new Promise<boolean>((resolve) => response.once('close', () => resolve(response.complete)));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('close() did not return within 20 s of a 100 ms limit')), 20_000); });
    try {
      await Promise.race([wharf.stop({ graceMs: 100 }), late]);
    } catch (error) {
      response.destroy(); // lets the hung close() end, so the suite goes on
      throw error;
    } finally {
      clearTimeout(timer);
      await wharf.cleanup();
    }
    let received = 0;
    response.on('data', (chunk: Buffer) => { received += chunk.length; });
    response.on('error', () => undefined); // the cut, as the client sees it
    response.resume();
    assert.is(await ended, false, 'the response was cut, not finished');
    assert.ok(received < item.bytes.length, `${received} of ${item.bytes.length} bytes arrived`);
  });
}

test.run();
