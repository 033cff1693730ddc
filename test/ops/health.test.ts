import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { postgresDatabase } from '../helpers/postgres.js';
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

test('/readyz is 503 while the PostgreSQL database refuses connections, and ready again once it answers', async () => {
  const url = await postgresDatabase();
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  const wharf = await startWharf({ storage: { metadata: { driver: 'postgres', url } } });
  try {
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 200);
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    const ready = await fetch(`${wharf.url}/readyz`);
    assert.is(ready.status, 503);
    const body = await ready.text();
    assert.match(body, /^not ready: .*database/);
    assert.not.match(body, url);
    assert.not.match(body, '127.0.0.1');
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    assert.is((await fetch(`${wharf.url}/readyz`)).status, 200);
  } finally {
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await admin.end();
    await wharf.cleanup();
  }
});

test.run();
