import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually } from '../helpers/auth.js';
import { withHostEntries } from '../helpers/hosts.js';
import { startPebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { spawnWharf, tempDir, type WharfProcess } from '../helpers/server.js';
import { workerServing } from '../helpers/workers.js';
import { terminate } from '../helpers/children.js';

// With workers, what must happen once is done by the primary: the first admin (one password,
// valid on every worker) and the ACME order, whose HTTP-01 challenge any worker answers and
// whose certificate every worker serves. Pebble (Let's Encrypt's test CA) runs on loopback.

const baseDomain = 'workers.wharf.test';

/** The certificate a TLS connection to `url` is served, and by which worker. */
function handshake(wharf: WharfProcess, url: string, ca: string): Promise<{ certificate: X509Certificate; authorized: boolean; worker: number | null }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), servername: baseDomain, ca, rejectUnauthorized: false }, () => {
      void workerServing(wharf.child.pid!, { serverPort: socket.remotePort!, clientPort: socket.localPort! }).then((worker) => {
        resolve({ certificate: socket.getPeerX509Certificate()!, authorized: socket.authorized, worker });
        socket.destroy();
      }, reject);
    });
    socket.once('error', reject);
  });
}

test('two workers: one first admin, one ACME order whose certificate every worker serves', async () => {
  await withHostEntries([baseDomain, `docker-local.${baseDomain}`], async () => {
    const httpPort = await freePort();
    const pebble = await startPebble({ httpPort });
    const dataDir = await tempDir();
    const config = [
      'workers: 2',
      `certsDir: ${dataDir}/certs`, // not the default beside the config file: a fresh ACME account and order
      `baseDomain: ${baseDomain}`,
      'listeners:',
      `  - { address: 127.0.0.1, port: 0, tls: { mode: acme, directory: "${pebble.directory}", caFile: "${pebble.caFile}", email: ops@wharf.test, retryAfter: 1s } }`,
      `  - { address: 127.0.0.1, port: ${httpPort} }`,
      'repositories:',
      '  docker-local: { type: local }',
      'log: { access: false }',
      'auth: { enabled: true }',
    ].join('\n');
    const wharf = await spawnWharf(dataDir, { config });
    try {
      const said = await wharf.log.waitFor('the first user is admin', 20_000);
      const password = /password (\S+)/.exec(said)![1]!;
      const https = wharf.log.lines.map((line) => /listening on (https:\/\/\S+)/.exec(line)?.[1]).find(Boolean)!;
      const root = await pebble.root();
      // Each worker in turn serves the certificate Pebble issued once HTTP-01 was answered.
      const seen = new Map<number, X509Certificate>();
      await eventually('both workers serve the issued certificate', async () => {
        const { certificate, authorized, worker } = await handshake(wharf, https, root);
        if (authorized && worker !== null) seen.set(worker, certificate);
        return seen.size === 2;
      }, 60_000).catch((error: Error) => {
        throw new Error(`${error.message} (workers seen serving it: ${seen.size}; ${wharf.log.lines.filter((line) => line.includes('ACME')).join(' | ')})`);
      });
      const [first, second] = [...seen.values()];
      assert.is(first!.fingerprint256, second!.fingerprint256, 'one order, one certificate');
      assert.is(wharf.log.lines.filter((line) => line.includes('ACME: certificate for')).length, 1, 'the primary ordered once');
      // The admin password works on whichever worker answers: one account in the shared database.
      const basic = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
      for (let i = 0; i < 4; i++) {
        const answer = await fetch(`http://127.0.0.1:${httpPort}/v2/`, { headers: { authorization: basic } });
        assert.is(answer.status, 200);
      }
      assert.is(wharf.log.lines.filter((line) => line.includes('the first user is admin')).length, 1, 'one first admin');
    } finally {
      await terminate(wharf.child);
      await pebble.stop();
    }
  });
});

test.run();
