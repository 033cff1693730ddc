import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startWharf, tempDir } from '../helpers/server.js';

// README, "Over TLS, by subdomain and by port": Wharf's server certificate names localhost,
// baseDomain, *.baseDomain and every address the listeners are reached on (a listener on 0.0.0.0
// covers every local interface), and is issued again, under the same CA, when that list changes.

/** The certificate a TLS listener at `url` presents (to a client that sends no SNI). */
function presented(url: string, ca: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error('no certificate'));
    });
    socket.on('error', reject);
  });
}

const names = (cert: X509Certificate) => (cert.subjectAltName ?? '').split(', ');

test('the certificate names baseDomain and *.baseDomain; another baseDomain gets a new one from the same CA', async () => {
  const dataDir = await tempDir();
  const listeners = [{ address: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }];
  const first = await startWharf({ dataDir, baseDomain: 'one.test', listeners });
  const ca = await readFile(first.caPath!, 'utf8');
  let before: X509Certificate;
  try {
    before = await presented(first.url, ca);
    for (const name of ['DNS:localhost', 'DNS:one.test', 'DNS:*.one.test', 'IP Address:127.0.0.1']) assert.ok(names(before).includes(name), `${name} in ${before.subjectAltName}`);
  } finally {
    await first.stop();
  }
  const second = await startWharf({ dataDir, baseDomain: 'two.test', listeners });
  try {
    const after = await presented(second.url, ca);
    assert.ok(names(after).includes('DNS:two.test') && names(after).includes('DNS:*.two.test'), after.subjectAltName);
    assert.not.ok(names(after).some((name) => name.includes('one.test')), 'the old names are gone');
    assert.is.not(after.serialNumber, before.serialNumber, 'issued again');
    assert.is(await readFile(second.caPath!, 'utf8'), ca, 'under the same CA');
    assert.ok(after.verify(new X509Certificate(ca).publicKey));
  } finally {
    await second.cleanup();
  }
});

test('a listener on 0.0.0.0 puts every local interface address in the certificate', async () => {
  const wharf = await startWharf({ auth: {}, listeners: [{ address: '0.0.0.0', port: 0, tls: { mode: 'self-signed' } }] });
  try {
    const cert = new X509Certificate(await readFile(join(wharf.dataDir, 'certs', 'server.crt')));
    const local = Object.values(networkInterfaces()).flatMap((addresses) => addresses ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
    assert.ok(local.length > 0);
    for (const address of local) assert.ok(names(cert).includes(`IP Address:${address}`), `${address} in ${cert.subjectAltName}`);
  } finally {
    await wharf.cleanup();
  }
});

test.run();
