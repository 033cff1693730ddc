import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type forge from 'node-forge';
import { replaceFile, writePrivateFile } from './private-file.js';
import { prepareDirectory } from '../config/directories.js';
import type { Config } from '../config/types.js';

// Self-signed TLS: on first start Wharf creates its own CA and a server certificate signed by it,
// under certsDir (private keys mode 0600). The server certificate names every host name and
// address Wharf is reached by, IP addresses included (Go clients refuse a certificate without
// the IP SAN they dialled: "x509: cannot validate certificate … doesn't contain any IP SANs").
// It is issued again whenever that list changes or expiry comes within 30 days.
//
//   certsDir/ca.crt, ca.key            the CA: trust ca.crt in clients
//   certsDir/server.crt, server.key    the serving certificate, as the chain it is served with
//                                      (server, then ca), and its key; each replaced in one rename
//   certsDir/server.names.json         the names the server certificate was issued for

export interface TlsMaterial {
  key: string;
  /** The server certificate followed by the CA certificate. */
  cert: string;
  caPath: string;
  /** The files the server serves: certsDir/server.crt (the chain) and server.key. */
  certPath: string;
  keyPath: string;
  /** Whether this call issued a new server certificate. */
  issued: boolean;
}

const renewWithinMs = 30 * 24 * 3600 * 1000;

/** node-forge, loaded on first use: a server without a self-signed listener does not pay its memory. */
let lib: typeof forge;

/** Host names and addresses the server certificate must carry for this config. */
export function certificateNames(config: Config): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost']);
  if (config.baseDomain) {
    dns.add(config.baseDomain);
    dns.add(`*.${config.baseDomain}`);
  }
  const ips = new Set(['127.0.0.1', '::1']);
  for (const listener of config.listeners) {
    if (listener.address === '0.0.0.0' || listener.address === '::') {
      for (const addresses of Object.values(networkInterfaces())) for (const address of addresses ?? []) ips.add(address.address);
    } else if (isIP(listener.address)) {
      ips.add(listener.address);
    } else {
      dns.add(listener.address);
    }
  }
  return { dns: [...dns].sort(), ips: [...ips].sort() };
}

function newKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = lib.pki.privateKeyFromPem(pem);
  return { privateKey: forgeKey, publicKey: lib.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, days: number): forge.pki.Certificate {
  const cert = lib.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + days * 24 * 3600_000);
  return cert;
}

async function loadOrCreateCa(dir: string): Promise<{ cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey; pem: string }> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(join(dir, 'ca.crt'), 'utf8'), readFile(join(dir, 'ca.key'), 'utf8')]);
    return { cert: lib.pki.certificateFromPem(certPem), key: lib.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey, pem: certPem };
  } catch {
    const keys = newKeyPair();
    const cert = newCertificate(keys.publicKey, 3650);
    const subject = [{ name: 'commonName', value: 'Wharf local CA' }, { name: 'organizationName', value: 'Wharf' }];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(keys.privateKey, lib.md.sha256.create());
    const pem = lib.pki.certificateToPem(cert);
    await writePrivateFile(join(dir, 'ca.key'), keys.pem);
    await writeFile(join(dir, 'ca.crt'), pem);
    return { cert, key: keys.privateKey, pem };
  }
}

/** Returns the server key and chain for `names`, creating the CA and (re)issuing the certificate as needed. */
export async function ensureSelfSigned(dir: string, names: { dns: string[]; ips: string[] }): Promise<TlsMaterial> {
  lib ??= (await import('node-forge')).default;
  await prepareDirectory(dir, 'certsDir');
  const ca = await loadOrCreateCa(dir);
  const wanted = JSON.stringify(names);
  const paths = { caPath: join(dir, 'ca.crt'), certPath: join(dir, 'server.crt'), keyPath: join(dir, 'server.key') };
  try {
    const [certPem, key, issuedFor] = await Promise.all([
      readFile(paths.certPath, 'utf8'), readFile(paths.keyPath, 'utf8'), readFile(join(dir, 'server.names.json'), 'utf8'),
    ]);
    const current = lib.pki.certificateFromPem(certPem);
    if (issuedFor === wanted && current.validity.notAfter.getTime() - Date.now() > renewWithinMs && ca.cert.verify(current)) {
      // Earlier versions stored the server certificate alone: store the chain it is served with.
      const chain = certPem.includes(ca.pem.trim()) ? certPem : `${certPem}${ca.pem}`;
      if (chain !== certPem) await replaceFile(paths.certPath, chain, 0o644);
      return { key, cert: chain, ...paths, issued: false };
    }
  } catch { /* none yet, or unreadable: issue one */ }
  const keys = newKeyPair();
  const cert = newCertificate(keys.publicKey, 825);
  cert.setSubject([{ name: 'commonName', value: names.dns[0] ?? 'localhost' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...names.dns.map((value) => ({ type: 2, value })), ...names.ips.map((ip) => ({ type: 7, ip }))] },
  ]);
  cert.sign(ca.key, lib.md.sha256.create());
  const chain = `${lib.pki.certificateToPem(cert)}${ca.pem}`;
  await writePrivateFile(paths.keyPath, keys.pem);
  await replaceFile(paths.certPath, chain, 0o644);
  await writeFile(join(dir, 'server.names.json'), wanted);
  return { key: keys.pem, cert: chain, ...paths, issued: true };
}

/** Makes the next ensureSelfSigned issue a new server certificate (the CA is kept). */
export async function forgetServerCertificate(dir: string): Promise<void> {
  await rm(join(dir, 'server.names.json'), { force: true });
}
