import { readFile, writeFile } from 'node:fs/promises';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureSelfSigned, forgetServerCertificate } from '../../src/tls/self-signed.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// tls: files — the operator's PEM pairs, chosen by SNI, reloaded when replaced on disk.

let wharf: TestServer;
let dirA: string;
let dirB: string;
let port: number;

test.before(async () => {
  dirA = await tempDir('wharf-pem-a-');
  dirB = await tempDir('wharf-pem-b-');
  await ensureSelfSigned(dirA, { dns: ['a.test'], ips: [] });
  await ensureSelfSigned(dirB, { dns: ['b.test', '*.b.test'], ips: [] });
  wharf = await startWharf({
    listeners: [{
      address: '127.0.0.1', port: 0,
      tls: { mode: 'files', certificates: ['A', 'B'].map((_, i) => ({ cert: join([dirA, dirB][i]!, 'server.crt'), key: join([dirA, dirB][i]!, 'server.key') })) },
    }],
  });
  port = Number(wharf.url.split(':')[2]);
});
test.after(() => wharf.cleanup());

/** Handshakes with `servername`, verifying the chain against `caDir`'s CA; returns the served certificate. */
function handshake(servername: string, caDir: string, options: { checkName: boolean } = { checkName: true }): Promise<PeerCertificate> {
  return readFile(join(caDir, 'ca.crt'), 'utf8').then((ca) => new Promise((resolve, reject) => {
    const checkServerIdentity = options.checkName ? undefined : () => undefined;
    const socket = connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['http/1.1'], ...(checkServerIdentity ? { checkServerIdentity } : {}) }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  }));
}

test('SNI picks the pair whose names match; other names get the first pair', async () => {
  assert.match((await handshake('b.test', dirB)).subjectaltname ?? '', 'DNS:b.test');
  assert.match((await handshake('x.b.test', dirB)).subjectaltname ?? '', 'DNS:b.test', 'wildcard');
  assert.match((await handshake('a.test', dirA)).subjectaltname ?? '', 'DNS:a.test');
  assert.match((await handshake('other.example', dirA, { checkName: false })).subjectaltname ?? '', 'DNS:a.test');
});

test('a certificate replaced on disk is served from the next handshake on', async () => {
  const before = await handshake('a.test', dirA);
  await forgetServerCertificate(dirA);
  await ensureSelfSigned(dirA, { dns: ['a.test', 'renewed.a.test'], ips: [] });
  const after = await handshake('a.test', dirA);
  assert.is.not(after.serialNumber, before.serialNumber);
  assert.match(after.subjectaltname ?? '', 'DNS:renewed.a.test');
});

test('a missing certificate file stops start-up with one line naming the key', async () => {
  const dir = await tempDir('wharf-config-');
  const file = join(dir, 'wharf.yaml');
  await writeFile(file, `listeners:\n  - { port: 0, tls: { mode: files, certificates: [{ cert: ${dir}/none.crt, key: ${dir}/none.key }] } }\nrepositories:\n  docker-local: { type: local }\n`);
  const result = await runCli(['serve', '--config', file, '--data', join(dir, 'data')]);
  assert.is(result.code, 2);
  assert.match(result.stderr.trim(), /^wharf: config error: listeners\[0\]\.tls\.certificates\[0\]: cannot read .*none\.crt/);
  assert.is(result.stderr.trim().split('\n').length, 1);
});

test.run();
