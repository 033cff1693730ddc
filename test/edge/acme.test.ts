import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { pebbleIdentity, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// TLS mode acme against Pebble (Let's Encrypt's test CA) on loopback: Pebble validates HTTP-01
// on Wharf's plain listener, Wharf serves the issued chain, renews it before expiry, keeps
// serving the old one while the CA is unreachable, and starts with its stored certificate.

const run = promisify(execFile);
const baseDomain = 'acme.wharf.test';
const names = [baseDomain, `docker-local.${baseDomain}`];

interface Handshake {
  certificate: X509Certificate;
  alpn: string | false;
  /** Whether the chain verified against the given CA for this name. */
  authorized: boolean;
}

function handshake(url: string, servername: string, ca?: string): Promise<Handshake> {
  const port = Number(new URL(url).port);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false, ...(ca ? { ca } : {}) }, () => {
      resolve({ certificate: socket.getPeerX509Certificate()!, alpn: socket.alpnProtocol ?? false, authorized: socket.authorized });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, seconds = 30): Promise<T> {
  for (let i = 0; i < seconds * 10; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Waits until the listener at `url` serves `name` a chain that verifies against `root`. */
function issued(url: string, name: string, root: string): Promise<Handshake> {
  return waitFor('the ACME certificate', async () => {
    const seen = await handshake(url, name, root);
    return seen.authorized ? seen : undefined;
  });
}

async function startAcmeWharf(pebble: { directory: string; caFile: string }, httpPort: number, dataDir: string, log: string[], extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startWharf({
    dataDir,
    baseDomain,
    listeners: [
      { address: '127.0.0.1', port: httpPort, redirectToHttps: true },
      { address: '127.0.0.1', port: 0, tls: { mode: 'acme', directory: pebble.directory, caFile: pebble.caFile, email: 'ops@wharf.test', retryAfter: '1s', ...extra } },
    ],
    log: (message) => log.push(message),
  });
}

test('a certificate from Pebble via HTTP-01 on the redirecting :80 listener; skopeo verifies it; a restart reuses it', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const pebble = await startPebble({ httpPort });
    const dataDir = await tempDir();
    const log: string[] = [];
    let wharf = await startAcmeWharf(pebble, httpPort, dataDir, log);
    try {
      const https = wharf.urls[1]!;
      const root = await pebble.root();
      const served = await issued(https, names[1]!, root);
      assert.match(served.certificate.subjectAltName ?? '', `DNS:docker-local.${baseDomain}`);
      assert.match(served.certificate.subjectAltName ?? '', `DNS:${baseDomain}`);
      assert.match(served.certificate.issuer, 'Pebble');
      assert.is(served.alpn, 'h2', 'HTTP/2 is still offered with the swapped-in certificate');
      assert.ok(log.some((line) => line.includes(`certificate for ${names.join(', ')} issued by`)), log.join('\n'));
      // Everything else on the plain listener still goes to HTTPS.
      const redirected = await fetch(`http://127.0.0.1:${httpPort}/v2/`, { redirect: 'manual' });
      assert.is(redirected.status, 308);
      const acmeDir = join(dataDir, 'certs', 'acme');
      for (const file of ['account.key', 'certificate.pem']) assert.is((await stat(join(acmeDir, file))).mode & 0o777, 0o600, file);

      // A real client trusting only Pebble's root, through the subdomain name.
      const certDir = await tempDir('wharf-pebble-root-');
      await writeFile(join(certDir, 'ca.crt'), root);
      const image = makeImage();
      const layout = await tempDir('wharf-oci-');
      await writeOciLayout(layout, 'v1', [image]);
      const registry = `docker-local.${baseDomain}:${new URL(https).port}`;
      await skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:v1`, `docker://${registry}/team/app:1.0`]);
      const inspected = JSON.parse(await skopeo(['inspect', '--cert-dir', certDir, `docker://${registry}/team/app:1.0`])) as { Digest: string };
      assert.is(inspected.Digest, image.digest);

      // Restart with the CA gone: the stored certificate and account key are used as they are.
      const accountKey = await readFile(join(acmeDir, 'account.key'), 'utf8');
      await wharf.stop();
      await pebble.stop();
      wharf = await startAcmeWharf(pebble, httpPort, dataDir, log);
      const again = await handshake(wharf.urls[1]!, names[0]!, root);
      assert.ok(again.authorized, 'served at once, before any order');
      assert.is(again.certificate.serialNumber, served.certificate.serialNumber);
      assert.is(await readFile(join(acmeDir, 'account.key'), 'utf8'), accountKey);

      // wharf certs shows it: where, for which names, from whom, until when.
      const configFile = join(dataDir, 'wharf.yaml');
      await writeFile(configFile, [
        `dataDir: ${dataDir}`, `certsDir: ${join(dataDir, 'certs')}`, `baseDomain: ${baseDomain}`,
        `listeners: [{ port: 80 }, { port: 443, tls: { mode: acme, directory: "${pebble.directory}" } }]`,
        'repositories: { docker-local: { type: local } }', '',
      ].join('\n'));
      const certs = await runCli(['certs', '--config', configFile]);
      assert.is(certs.code, 0, certs.stderr);
      assert.match(certs.stdout, `ACME certificate: ${join(acmeDir, 'certificate.pem')}`);
      assert.match(certs.stdout, `for ${baseDomain}, docker-local.${baseDomain}`);
      assert.match(certs.stdout, 'issued by CN=Pebble Intermediate');
    } finally {
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test('renewal before expiry; a CA outage is retried with backoff while the old certificate serves; start-up without the CA', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const acmePort = await freePort();
    const log: string[] = [];
    const identity = await pebbleIdentity();
    const pebbleOptions = { httpPort, port: acmePort, validitySeconds: 18, identity };
    // No CA yet: Wharf starts anyway, on its own self-signed certificate, and keeps retrying.
    const wharf = await startAcmeWharf({ directory: `https://127.0.0.1:${acmePort}/dir`, caFile: identity.cert }, httpPort, await tempDir(), log);
    let pebble: Pebble | null = null;
    try {
      const https = wharf.urls[1]!;
      assert.match((await handshake(https, names[0]!)).certificate.issuer, 'Wharf local CA');
      await waitFor('two failed attempts', async () => (log.filter((line) => line.includes('failed (attempt')).length >= 2 ? true : undefined));
      const failures = log.filter((line) => line.includes('failed (attempt'));
      assert.match(failures[0]!, 'cannot reach the directory: ECONNREFUSED; retrying in 1s; no certificate yet');
      assert.match(failures[1]!, 'retrying in 2s', 'the delay doubles');

      pebble = await startPebble(pebbleOptions);
      const root = await pebble.root();
      const first = (await issued(https, names[0]!, root)).certificate;
      // Renewal comes a third of the lifetime ahead of expiry for a certificate this short.
      const renewed = await waitFor('a renewed certificate', async () => {
        const seen = await handshake(https, names[0]!, root);
        return seen.certificate.serialNumber !== first.serialNumber ? seen.certificate : undefined;
      });
      assert.ok(Date.parse(renewed.validTo) > Date.parse(first.validTo));
      // When the renewed certificate was issued, not when this loaded machine got to look at it.
      assert.ok(Date.parse(renewed.validFrom) < Date.parse(first.validTo), 'renewed before the old one expired');

      // The CA goes away: the next renewal fails and the current certificate keeps serving.
      await pebble.stop();
      const before = log.filter((line) => line.includes('failed (attempt')).length;
      await waitFor('a failed renewal', async () => (log.filter((line) => line.includes('failed (attempt')).length > before ? true : undefined));
      const failure = log.filter((line) => line.includes('failed (attempt')).at(-1)!;
      assert.match(failure, 'the current certificate');
      assert.match(failure, 'keeps serving');
      assert.is((await handshake(https, names[0]!)).certificate.serialNumber, renewed.serialNumber);
      assert.not.match(log.join('\n'), /BEGIN|PRIVATE KEY/, 'no key material in the log');
    } finally {
      await wharf.cleanup();
      await pebble?.stop();
    }
  });
});

test('TLS-ALPN-01 on the TLS listener alone: issued with no port 80; other clients pass the ClientHello check untouched', async () => {
  await withHostEntries(names, async () => {
    const tlsPort = await freePort();
    const pebble = await startPebble({ httpPort: await freePort(), tlsPort });
    const log: string[] = [];
    const wharf = await startWharf({
      dataDir: await tempDir(),
      baseDomain,
      listeners: [{ address: '127.0.0.1', port: tlsPort, tls: { mode: 'acme', directory: pebble.directory, caFile: pebble.caFile, retryAfter: '1s' } }],
      log: (message) => log.push(message),
    });
    try {
      const root = await pebble.root();
      const served = await issued(wharf.url, names[1]!, root);
      assert.is(served.alpn, 'h2');
      assert.match(served.certificate.issuer, 'Pebble');
      assert.ok(log.some((line) => line.includes('issued by')), log.join('\n'));
      // HTTP/1.1 and h2 requests over the same listener.
      const caFile = join(await tempDir('wharf-pebble-root-'), 'root.pem');
      await writeFile(caFile, root);
      for (const flag of ['--http1.1', '--http2']) {
        const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', flag, '--cacert', caFile,
          '--resolve', `${names[1]}:${tlsPort}:127.0.0.1`, `https://${names[1]}:${tlsPort}/v2/`]);
        assert.is(stdout, flag === '--http2' ? '200 2' : '200 1.1');
      }
      // Offering only acme-tls/1 with no challenge pending for the name: closed, no certificate.
      const refused = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: tlsPort, servername: names[0], ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => resolve(false));
        socket.once('error', () => resolve(true));
        socket.once('close', () => resolve(true));
      });
      assert.ok(refused);
    } finally {
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test('a CA that requires external account binding: refused without it, issued with it; the HMAC key never logged', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const hmacKey = randomBytes(32).toString('base64url');
    const pebble = await startPebble({ httpPort, externalAccounts: { 'kid-7': hmacKey } });
    const log: string[] = [];
    let wharf = await startAcmeWharf(pebble, httpPort, await tempDir(), log);
    try {
      await waitFor('a refused order', async () => (log.some((line) => line.includes('failed (attempt 1)')) ? true : undefined));
      assert.match(log.find((line) => line.includes('failed (attempt 1)'))!, 'this CA wants externalAccountBinding');
      await wharf.cleanup();
      wharf = await startAcmeWharf(pebble, httpPort, await tempDir(), log, { externalAccountBinding: { kid: 'kid-7', hmacKey } });
      const root = await pebble.root();
      const served = await issued(wharf.urls[1]!, names[0]!, root);
      assert.match(served.certificate.issuer, 'Pebble');
      assert.not.match(log.join('\n'), hmacKey);
    } finally {
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test('a changed domains list is ordered again at start, the old certificate serving until then', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const pebble = await startPebble({ httpPort });
    const dataDir = await tempDir();
    let wharf = await startAcmeWharf(pebble, httpPort, dataDir, [], { domains: [names[0]] });
    try {
      const root = await pebble.root();
      const first = (await issued(wharf.urls[1]!, names[0]!, root)).certificate;
      assert.not.match(first.subjectAltName ?? '', names[1]!);
      await wharf.stop();
      wharf = await startAcmeWharf(pebble, httpPort, dataDir, [], { domains: names });
      assert.is((await handshake(wharf.urls[1]!, names[0]!)).certificate.serialNumber, first.serialNumber, 'the stored one serves at once');
      const second = await waitFor('a certificate for both names', async () => {
        const seen = await handshake(wharf.urls[1]!, names[1]!, root);
        return seen.authorized ? seen.certificate : undefined;
      });
      assert.match(second.subjectAltName ?? '', `DNS:${names[0]}`);
    } finally {
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test.run();
