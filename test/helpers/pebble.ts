import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './ports.js';
import { tempDir } from './server.js';
import { terminate } from './children.js';
import { killWhenGone } from './watchdog.js';

// Pebble, Let's Encrypt's ACME test server (Debian's pebble), on loopback. It validates HTTP-01
// by fetching http://<name>:<httpPort>/.well-known/acme-challenge/<token>, resolving names the
// system's way (/etc/hosts). It forgets everything when stopped, and makes a new root each start.

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The CA of Pebble's own HTTPS listener, for acme.caFile. */
  caFile: string;
  /** The root that issued certificates chain to (PEM). */
  root(): Promise<string>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where Pebble sends HTTP-01 validation requests. */
  httpPort: number;
  /** Where Pebble makes TLS-ALPN-01 validation handshakes. */
  tlsPort?: number;
  /** Lifetime of issued certificates, to see renewal within a test. */
  validitySeconds?: number;
  /** The ACME port (to start a Pebble again where a client already looks). */
  port?: number;
  /** Require external account binding with these kid → base64url HMAC keys. */
  externalAccounts?: Record<string, string>;
  /** The HTTPS identity from pebbleIdentity() (a client configured before Pebble starts). */
  identity?: PebbleIdentity;
}

export interface PebbleIdentity {
  cert: string;
  key: string;
}

/** A certificate for Pebble's own HTTPS listener on 127.0.0.1: cert is what a client trusts. */
export async function pebbleIdentity(): Promise<PebbleIdentity> {
  const dir = await tempDir('wharf-pebble-');
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  return { cert, key };
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await tempDir('wharf-pebble-');
  const { cert, key } = options.identity ?? (await pebbleIdentity());
  const port = options.port ?? (await freePort());
  const managementPort = await freePort();
  await writeFile(join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${managementPort}`, certificate: cert, privateKey: key,
      httpPort: options.httpPort, tlsPort: options.tlsPort ?? (await freePort()), ocspResponderURL: '',
      externalAccountBindingRequired: options.externalAccounts !== undefined, externalAccountMACKeys: options.externalAccounts ?? {},
      ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
    },
  }));
  const child = spawn('pebble', ['-config', join(dir, 'pebble.json'), '-strict=false'], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { PATH: '/usr/bin:/bin', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
  });
  killWhenGone(child, dir);
  await Promise.all([waitForPort(port, child), waitForPort(managementPort, child)]);
  const ca = await readFile(cert, 'utf8');
  return {
    directory: `https://127.0.0.1:${port}/dir`,
    caFile: cert,
    root: () => new Promise((resolve, reject) => {
      get(`https://127.0.0.1:${managementPort}/roots/0`, { ca }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => { body += chunk.toString(); });
        response.on('end', () => resolve(body));
      }).on('error', reject);
    }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await terminate(child);
    },
  };
}
