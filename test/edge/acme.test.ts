import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { withHostEntries } from '../helpers/hosts.js';
import { logCollector, type LogCollector } from '../helpers/logs.js';
import { manualClock, type ManualClock } from '../helpers/manual-clock.js';
import { pebbleIdentity, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { skopeo } from '../helpers/skopeo.js';
import { runCli, startWharf, tempDir, type TestServer } from '../helpers/server.js';

// TLS mode acme against Pebble (Let's Encrypt's test CA) on loopback: Pebble validates HTTP-01
// on Wharf's plain listener, Wharf serves the issued chain, renews it before expiry, keeps
// serving the old one while the CA is unreachable, and starts with its stored certificate. Each
// step waits for its event (the log line of an order); renewal and retries follow a clock the
// test moves, so no outcome depends on how fast a loaded machine gets there.

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

/**
 * Waits for the `nth` certificate of this log to be issued (its line is written once the listeners
 * serve it), then checks that the listener at `url` serves `name` a chain verifying against `root`.
 */
async function issued(log: LogCollector, nth: number, url: string, name: string, root: string): Promise<Handshake> {
  let count = 0;
  await log.waitFor((line) => line.includes('ACME: certificate for') && ++count === nth);
  const seen = await handshake(url, name, root);
  assert.ok(seen.authorized, `${name} is served the issued chain`);
  return seen;
}

interface AcmeWharfOptions {
  httpPort: number;
  dataDir: string;
  log: LogCollector;
  /** More of the listener's tls settings. */
  tls?: Record<string, unknown>;
  clock?: ManualClock;
}

async function startAcmeWharf(pebble: { directory: string; caFile: string }, { httpPort, dataDir, log, tls = {}, clock }: AcmeWharfOptions): Promise<TestServer> {
  return startWharf({
    dataDir,
    baseDomain,
    listeners: [
      { address: '127.0.0.1', port: httpPort, redirectToHttps: true },
      { address: '127.0.0.1', port: 0, tls: { mode: 'acme', directory: pebble.directory, caFile: pebble.caFile, email: 'ops@wharf.test', retryAfter: '1s', ...tls } },
    ],
    log: (line) => log.write(line),
    ...(clock ? { acmeClock: clock } : {}),
  });
}

test('a certificate from Pebble via HTTP-01 on the redirecting :80 listener; skopeo verifies it; a restart reuses it', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const pebble = await startPebble({ httpPort });
    const dataDir = await tempDir();
    const log = logCollector();
    let wharf = await startAcmeWharf(pebble, { httpPort, dataDir, log });
    try {
      const https = wharf.urls[1]!;
      const root = await pebble.root();
      const served = await issued(log, 1, https, names[1]!, root);
      assert.match(served.certificate.subjectAltName ?? '', `DNS:docker-local.${baseDomain}`);
      assert.match(served.certificate.subjectAltName ?? '', `DNS:${baseDomain}`);
      assert.match(served.certificate.issuer, 'Pebble');
      assert.is(served.alpn, 'h2', 'HTTP/2 is still offered with the swapped-in certificate');
      assert.ok(log.lines.some((line) => line.includes(`certificate for ${names.join(', ')} issued by`)), log.lines.join('\n'));
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
      wharf = await startAcmeWharf(pebble, { httpPort, dataDir, log });
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

test('renewal a third of the lifetime ahead of expiry, by the clock; a CA outage is retried with backoff while the old certificate serves; start-up without the CA', async () => {
  await withHostEntries(names, async () => {
    const httpPort = await freePort();
    const acmePort = await freePort();
    const log = logCollector();
    const clock = manualClock();
    const identity = await pebbleIdentity();
    // 30 days: a third of that (10 days) is less than renewBefore (30 days), so it is what counts.
    const pebbleOptions = { httpPort, port: acmePort, validitySeconds: 30 * 86_400, identity };
    // No CA yet: Wharf starts anyway, on its own self-signed certificate, and keeps retrying.
    const wharf = await startAcmeWharf({ directory: `https://127.0.0.1:${acmePort}/dir`, caFile: identity.cert }, { httpPort, dataDir: await tempDir(), log, clock });
    let pebble: Pebble | null = null;
    try {
      const https = wharf.urls[1]!;
      assert.match((await handshake(https, names[0]!)).certificate.issuer, 'Wharf local CA');
      clock.advance(0);
      assert.match(await log.waitFor('failed (attempt 1)'), 'cannot reach the directory: ECONNREFUSED; retrying in 1s; no certificate yet');
      assert.is(clock.nextDue(), clock.now() + 1000, 'the retry is due retryAfter later');
      clock.advance(1000);
      assert.match(await log.waitFor('failed (attempt 2)'), 'retrying in 2s', 'the delay doubles');
      assert.is(clock.nextDue(), clock.now() + 2000);

      pebble = await startPebble(pebbleOptions);
      const root = await pebble.root();
      clock.advance(2000);
      const first = (await issued(log, 1, https, names[0]!, root)).certificate;
      const renewal = (certificate: X509Certificate) => Date.parse(certificate.validTo) - (Date.parse(certificate.validTo) - Date.parse(certificate.validFrom)) / 3;
      // Up to a millisecond before the renewal (a day at a time, as the timers go): not yet.
      clock.advance(Math.floor(renewal(first) - clock.now()) - 1);
      assert.ok(Math.abs(clock.nextDue()! - renewal(first)) < 1, `renewal due at ${new Date(renewal(first)).toISOString()}, not ${new Date(clock.nextDue()!).toISOString()}`);
      clock.advance(clock.nextDue()! - clock.now());
      const renewed = (await issued(log, 2, https, names[0]!, root)).certificate;
      assert.is.not(renewed.serialNumber, first.serialNumber);

      // The CA goes away: the next renewal fails and the current certificate keeps serving.
      await pebble.stop();
      clock.advance(Math.max(0, Math.ceil(renewal(renewed) - clock.now())));
      const failure = await log.waitFor((line) => line.includes('failed (attempt') && line.includes('keeps serving'));
      assert.match(failure, 'the current certificate');
      assert.is((await handshake(https, names[0]!)).certificate.serialNumber, renewed.serialNumber);
      assert.not.match(log.lines.join('\n'), /BEGIN|PRIVATE KEY/, 'no key material in the log');
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
    const log = logCollector();
    const wharf = await startWharf({
      dataDir: await tempDir(),
      baseDomain,
      listeners: [{ address: '127.0.0.1', port: tlsPort, tls: { mode: 'acme', directory: pebble.directory, caFile: pebble.caFile, retryAfter: '1s' } }],
      log: (line) => log.write(line),
    });
    try {
      const root = await pebble.root();
      const served = await issued(log, 1, wharf.url, names[1]!, root);
      assert.is(served.alpn, 'h2');
      assert.match(served.certificate.issuer, 'Pebble');
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
    const log = logCollector();
    let wharf = await startAcmeWharf(pebble, { httpPort, dataDir: await tempDir(), log });
    try {
      assert.match(await log.waitFor('failed (attempt 1)'), 'this CA wants externalAccountBinding');
      await wharf.cleanup();
      wharf = await startAcmeWharf(pebble, { httpPort, dataDir: await tempDir(), log, tls: { externalAccountBinding: { kid: 'kid-7', hmacKey } } });
      const root = await pebble.root();
      const served = await issued(log, 1, wharf.urls[1]!, names[0]!, root);
      assert.match(served.certificate.issuer, 'Pebble');
      assert.not.match(log.lines.join('\n'), hmacKey);
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
    const log = logCollector();
    let wharf = await startAcmeWharf(pebble, { httpPort, dataDir, log, tls: { domains: [names[0]] } });
    try {
      const root = await pebble.root();
      const first = (await issued(log, 1, wharf.urls[1]!, names[0]!, root)).certificate;
      assert.not.match(first.subjectAltName ?? '', names[1]!);
      await wharf.stop();
      wharf = await startAcmeWharf(pebble, { httpPort, dataDir, log, tls: { domains: names } });
      assert.is((await handshake(wharf.urls[1]!, names[0]!)).certificate.serialNumber, first.serialNumber, 'the stored one serves at once');
      const second = (await issued(log, 2, wharf.urls[1]!, names[1]!, root)).certificate;
      assert.match(second.subjectAltName ?? '', `DNS:${names[0]}`);
    } finally {
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test.run();
