import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renewPem } from '../helpers/pem.js';
import { spawnWharf, startWharf, tempDir } from '../helpers/server.js';
import { terminate } from '../helpers/children.js';

// README, "Over TLS, by subdomain and by port": Wharf's server certificate names localhost,
// baseDomain, *.baseDomain and every address the listeners are reached on (a listener on 0.0.0.0
// covers every local interface), and is issued again, under the same CA, when that list changes.
// Certificate files replaced on disk are served without a restart; SIGHUP reads them again where
// file events do not arrive.

/** The certificate a TLS listener at `url` presents (to a client that sends no SNI); verified when `ca` is given. */
function presented(url: string, ca?: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ...(ca ? { ca } : { rejectUnauthorized: false }) }, () => {
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

test('SIGHUP reads certificate files again where file events do not arrive (a symlink whose target changes)', async () => {
  // certbot's layout: the configured files are symlinks in live/ to files in archive/. Replacing
  // the files in archive/ changes nothing in live/, the folder Wharf watches: no event arrives.
  const dir = await tempDir('wharf-pem-');
  await mkdir(join(dir, 'archive'));
  await mkdir(join(dir, 'live'));
  await renewPem(join(dir, 'archive'), '2');
  for (const file of ['cert.pem', 'key.pem']) await symlink(join(dir, 'archive', file), join(dir, 'live', file));
  const wharf = await spawnWharf(join(dir, 'data'), {
    config: `listeners:\n  - { address: 127.0.0.1, port: 0, tls: { mode: files, certificates: [{ cert: ${dir}/live/cert.pem, key: ${dir}/live/key.pem }] } }\nrepositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n`,
  });
  try {
    const before = await presented(wharf.url);
    await renewPem(join(dir, 'archive'), '3');
    wharf.child.kill('SIGHUP');
    await wharf.log.waitFor(`serving the new certificate in ${dir}/live/cert.pem`, 10_000);
    await wharf.log.waitFor('reload:', 10_000);
    const after = await presented(wharf.url);
    assert.is.not(after.serialNumber, before.serialNumber);
    assert.is(after.fingerprint256, new X509Certificate(await readFile(join(dir, 'archive', 'cert.pem'))).fingerprint256);
  } finally {
    await terminate(wharf.child);
  }
});

test.run();
