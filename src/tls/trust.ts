import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/types.js';

/** The text `wharf certs` prints: where the CA is and how each client comes to trust it. */
export function trustInstructions(config: Config, caPem: string, caPath: string): string {
  const ca = new X509Certificate(caPem);
  const endpoints = config.listeners
    .filter((listener) => listener.tls !== 'none')
    .map((listener) => `${listener.address === '0.0.0.0' || listener.address === '::' ? 'HOST' : listener.address}:${listener.port}`);
  const lines = [
    `Wharf's CA certificate: ${caPath}`,
    `  SHA-256 fingerprint ${ca.fingerprint256}, valid until ${ca.validTo}`,
    '',
    'Trust it in clients (once per machine):',
    ...(endpoints.length ? endpoints : ['HOST:PORT']).flatMap((endpoint) => [
      `  docker:         sudo mkdir -p /etc/docker/certs.d/${endpoint} && sudo cp ${caPath} /etc/docker/certs.d/${endpoint}/ca.crt`,
      `  podman/skopeo:  sudo mkdir -p /etc/containers/certs.d/${endpoint} && sudo cp ${caPath} /etc/containers/certs.d/${endpoint}/ca.crt`,
    ]),
    '                  (or per command: --cert-dir DIR, where DIR holds a copy of ca.crt alone)',
    `  system-wide:    sudo cp ${caPath} /usr/local/share/ca-certificates/wharf-ca.crt && sudo update-ca-certificates`,
    '',
    'wharf certs --regenerate issues a new server certificate (the CA stays, so clients keep trusting it).',
  ];
  return `${lines.join('\n')}\n`;
}
