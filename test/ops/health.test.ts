import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startWharf } from '../helpers/server.js';

// Probes for load balancers: no credentials needed (access control on), nothing of the
// configuration revealed, readiness with its reason.

test('/healthz, /readyz and /api/system/ping answer without credentials and reveal nothing', async () => {
  const wharf = await startWharf({
    auth: { enabled: true },
    listeners: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, redirectToHttps: true }, { address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }],
  });
  try {
    assert.is((await fetch(`${wharf.url}/v2/`)).status, 401, 'access control is on');
    for (const base of [wharf.urls[0]!, wharf.urls[1]!]) {
      const live = await fetch(`${base}/healthz`, { redirect: 'manual' });
      assert.is(live.status, 200, `${base} (a redirecting listener answers probes itself)`);
      assert.is(await live.text(), 'ok\n');
      const ready = await fetch(`${base}/readyz`, { redirect: 'manual' });
      assert.is(ready.status, 200);
      assert.is(await ready.text(), 'ready\n');
      const ping = await fetch(`${base}/api/system/ping`, { redirect: 'manual' });
      assert.is(ping.status, 200);
      assert.is(await ping.text(), 'OK');
    }
  } finally {
    await wharf.cleanup();
  }
});

test('/readyz is 503 with the reason when storage cannot be written, and names no path', async () => {
  const wharf = await startWharf();
  try {
    await rm(join(wharf.dataDir, 'tmp'), { recursive: true });
    const ready = await fetch(`${wharf.url}/readyz`);
    assert.is(ready.status, 503);
    const body = await ready.text();
    assert.is(body, 'not ready: storage is not writable (ENOENT)\n');
    assert.not.match(body, wharf.dataDir);
    assert.is((await fetch(`${wharf.url}/healthz`)).status, 200, 'alive all the same');
  } finally {
    await wharf.cleanup();
  }
});

test.run();
