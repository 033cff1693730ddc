import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withHostEntries } from '../helpers/hosts.js';
import { logCollector } from '../helpers/logs.js';
import { startPebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { runCli, startWharf, tempDir } from '../helpers/server.js';
import { stockApache, stockNginx, type PortMap, type StockProxy } from '../helpers/stock-proxies.js';

// Wharf with an acme listener behind the site `wharf proxy-config` writes. Before Wharf holds a
// certificate the site serves Wharf's self-signed one and port 80 passes the CA's HTTP-01
// challenges to Wharf, so Wharf gets its certificate from Pebble through the proxy; the site
// written again then serves that very certificate (chain and key in one file), which verifies
// against Pebble's root in Debian's stock nginx, and which Debian's stock Apache loads too. The
// only change to the stock layout and the site is their listen ports (free ones for 80 and 443).

const baseDomain = 'proxied-acme.wharf.test';
const names = [baseDomain, `docker-local.${baseDomain}`];

/** The certificate nginx serves `servername` on `port`, and whether it verifies against `ca`. */
function handshake(port: number, servername: string, ca: string): Promise<{ certificate: X509Certificate; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false }, () => {
      resolve({ certificate: socket.getPeerX509Certificate()!, authorized: socket.authorized });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** A GET on the proxy's port 80 for `host` (fetch does not let a test set Host). */
function portEighty(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, headers: { host } }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('behind the site proxy-config writes, an acme Wharf gets its certificate through the proxy\'s port 80, and the site written again serves it (nginx, Apache)', async () => {
  await withHostEntries(names, async () => {
    const dir = await tempDir('wharf-proxy-acme-');
    const ports: PortMap = { 80: await freePort(), 443: await freePort() };
    const pebble = await startPebble({ httpPort: ports[80]! });
    const plainPort = await freePort();
    const acmeListener = { address: '127.0.0.1', port: await freePort(), tls: { mode: 'acme', directory: pebble.directory, caFile: pebble.caFile, email: 'ops@wharf.test' } };
    const configFile = join(dir, 'wharf.yaml');
    await writeFile(configFile, [
      `dataDir: ${join(dir, 'data')}`, `certsDir: ${join(dir, 'data', 'certs')}`, `baseDomain: ${baseDomain}`,
      `listeners: [{ address: 127.0.0.1, port: ${plainPort} }, ${JSON.stringify(acmeListener)}]`,
      'repositories: { docker-local: { type: local } }', '',
    ].join('\n'));
    const generate = async (server: 'nginx' | 'apache', step: string) => {
      const out = join(dir, `${server}-${step}`);
      const result = await runCli(['proxy-config', server, '--out', out, '--config', configFile]);
      assert.is(result.code, 0, result.stderr);
      return { text: await readFile(join(out, 'wharf.conf'), 'utf8'), stdout: result.stdout, stderr: result.stderr };
    };
    const acmeFile = join(dir, 'data', 'certs', 'acme', 'certificate.pem');

    const before = await generate('nginx', 'before');
    assert.match(before.stderr, `Wharf has no ACME certificate yet (${acmeFile})`);
    let proxy: StockProxy = await stockNginx(await tempDir('wharf-stock-nginx-'), before.text, ports);
    await proxy.start();
    const log = logCollector();
    const wharf = await startWharf({
      dataDir: join(dir, 'data'), baseDomain, log: (line) => log.write(line),
      listeners: [{ address: '127.0.0.1', port: plainPort }, acmeListener],
    });
    try {
      const outcome = await log.waitFor((line) => line.includes('ACME: certificate for') || line.includes('ACME: order for'), 60_000);
      assert.match(outcome, 'ACME: certificate for', 'Pebble validated the challenges through the proxy');
      await proxy.stop();

      const after = await generate('nginx', 'after');
      assert.ok(after.text.includes(`ssl_certificate ${acmeFile};\n  ssl_certificate_key ${acmeFile};`), after.text);
      assert.match(after.stdout, `the proxy serves Wharf's ACME certificate ${acmeFile}; reload the proxy after each renewal`);
      assert.match(after.text, 'reload the proxy after each renewal');
      proxy = await stockNginx(await tempDir('wharf-stock-nginx-'), after.text, ports);
      assert.match(await proxy.check(), 'test is successful');
      await proxy.start();
      const root = await pebble.root();
      const issued = new X509Certificate(await readFile(acmeFile, 'utf8'));
      /** The proxy serves Wharf's certificate, and passes challenges to Wharf on port 80 (renewals), redirecting the rest. */
      const servesWharfs = async (server: string) => {
        const served = await handshake(ports[443]!, names[1]!, root);
        assert.ok(served.authorized, `${server}: the proxy serves a chain that verifies against Pebble's root`);
        assert.is(served.certificate.serialNumber, issued.serialNumber, `${server}: the certificate Wharf holds`);
        const challenge = await portEighty(ports[80]!, baseDomain, '/.well-known/acme-challenge/none');
        assert.is(challenge.status, 404, server);
        assert.match(challenge.body, 'no ACME challenge is pending for this token', `${server}: Wharf answered: ${challenge.body}`);
        const other = await portEighty(ports[80]!, names[1]!, '/v2/');
        assert.is(other.status, 301, `${server}: everything else on port 80 goes to HTTPS`);
      };
      await servesWharfs('nginx');
      await proxy.stop();

      const apache = await generate('apache', 'after');
      assert.ok(apache.text.includes(`SSLCertificateFile ${acmeFile}\n  SSLCertificateKeyFile ${acmeFile}`), apache.text);
      proxy = await stockApache(await tempDir('wharf-stock-apache-'), apache.text, ports);
      assert.match(await proxy.check(), 'Syntax OK');
      await proxy.start();
      await servesWharfs('Apache');
    } finally {
      await proxy.stop();
      await wharf.cleanup();
      await pebble.stop();
    }
  });
});

test.run();
