import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli, startWharf, tempDir } from '../helpers/server.js';
import { stockApache, stockNginx } from '../helpers/stock-proxies.js';

// wharf proxy-config: the snippets, and the real nginx and Apache accepting them.

const run = promisify(execFile);
let dir: string;
let configFile: string;

test.before(async () => {
  dir = await tempDir('wharf-proxyconf-');
  configFile = join(dir, 'wharf.yaml');
  await writeFile(configFile, [
    `certsDir: ${join(dir, 'certs')}`,
    'baseDomain: registry.test',
    'listeners:',
    '  - { address: 127.0.0.1, port: 5000 }',
    '  - { address: 127.0.0.1, port: 5443, tls: { mode: self-signed } }',
    'repositories:',
    '  docker-local: { type: local }',
    '  docker-hub: { type: remote, url: "https://registry-1.docker.io" }',
    '',
  ].join('\n'));
  assert.is((await runCli(['certs', '--config', configFile])).code, 0, 'certificates for the snippets to point at');
});

async function generate(server: string, method: string): Promise<string> {
  const out = join(dir, `${server}-${method}`);
  const result = await runCli(['proxy-config', server, '--method', method, '--out', out, '--config', configFile]);
  assert.is(result.code, 0, result.stderr);
  return join(out, 'wharf.conf');
}

/** `nginx -t` with the snippet dropped into a copy of Debian's stock /etc/nginx. */
async function nginxAccepts(snippet: string): Promise<void> {
  const proxy = await stockNginx(await tempDir('wharf-stock-nginx-'), await readFile(snippet, 'utf8'));
  assert.match(await proxy.check(), 'test is successful');
}

/** `apache2 -t` with the snippet enabled as a site in a copy of Debian's stock /etc/apache2. */
async function apacheAccepts(snippet: string): Promise<void> {
  const proxy = await stockApache(await tempDir('wharf-stock-apache-'), await readFile(snippet, 'utf8'));
  assert.match(await proxy.check(), 'Syntax OK');
}

test('nginx accepts every method; subdomain sites rewrite to the repository prefix and stream both ways', async () => {
  for (const method of ['subdomain', 'port', 'path']) await nginxAccepts(await generate('nginx', method));
  const subdomain = await readFile(join(dir, 'nginx-subdomain', 'wharf.conf'), 'utf8');
  for (const line of ['server_name docker-local.registry.test;', 'rewrite ^/v2/(.*)$ /api/docker/docker-local/v2/$1 break;', 'client_max_body_size 0;',
    'proxy_request_buffering off;', 'proxy_buffering off;', 'chunked_transfer_encoding on;', 'proxy_set_header X-Forwarded-Proto $scheme;',
    'return 301 https://$host$request_uri;', `ssl_certificate ${join(dir, 'certs')}/server.crt;`, 'server 127.0.0.1:5000;']) {
    assert.ok(subdomain.includes(line), line);
  }
  const port = await readFile(join(dir, 'nginx-port', 'wharf.conf'), 'utf8');
  assert.ok(port.includes('listen 5001 ssl http2;') && port.includes('proxy_set_header Host $host:5001;'), 'one server per port, Host with its port');
});

test('Apache accepts every method, with mod_ssl, mod_proxy, mod_rewrite and encoded slashes kept', async () => {
  for (const method of ['subdomain', 'port', 'path']) await apacheAccepts(await generate('apache', method));
  const subdomain = await readFile(join(dir, 'apache-subdomain', 'wharf.conf'), 'utf8');
  for (const line of ['AllowEncodedSlashes NoDecode', 'ProxyPreserveHost On', 'SSLEngine on', 'ServerName docker-hub.registry.test',
    'RewriteRule ^/v2/(.*)$ http://127.0.0.1:5000/api/docker/docker-hub/v2/$1 [P,NE]']) {
    assert.ok(subdomain.includes(line), line);
  }
});

test('with a files listener the proxy serves that certificate, and nginx and Apache load it', async () => {
  const [cert, key] = [join(dir, 'own.pem'), join(dir, 'own.key')];
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=registry.test', '-keyout', key, '-out', cert]);
  const ownConfig = join(dir, 'own.yaml');
  await writeFile(ownConfig, (await readFile(configFile, 'utf8')).replace('tls: { mode: self-signed }', `tls: { mode: files, certificates: [{ cert: ${cert}, key: ${key} }] }`));
  for (const server of ['nginx', 'apache']) {
    const out = join(dir, `${server}-own`);
    const result = await runCli(['proxy-config', server, '--method', 'subdomain', '--out', out, '--config', ownConfig]);
    assert.is(result.code, 0, result.stderr);
    const snippet = join(out, 'wharf.conf');
    const text = await readFile(snippet, 'utf8');
    assert.ok(text.includes(server === 'nginx' ? `ssl_certificate ${cert};` : `SSLCertificateFile ${cert}`), text);
    assert.not.match(text, 'server.crt');
    await (server === 'nginx' ? nginxAccepts(snippet) : apacheAccepts(snippet));
  }
});

test('Apache: no second "Listen 443" beside Debian\'s ports.conf (AH00526); port 80 redirects only the named sites', async () => {
  const subdomain = await readFile(join(dir, 'apache-subdomain', 'wharf.conf'), 'utf8');
  assert.not.match(subdomain, /^Listen /m);
  assert.match(subdomain, '<VirtualHost *:80>\n  ServerName docker-local.registry.test\n  ServerAlias docker-hub.registry.test');
  const port = await readFile(join(dir, 'apache-port', 'wharf.conf'), 'utf8');
  assert.match(port, /^Listen 5001$/m);
  assert.not.match(port, '<VirtualHost *:80>', 'port sites have no name for port 80 to redirect');
  // What the old snippet did is what stock Debian refuses.
  const refusal = await apacheAccepts(await writeSnippet(`Listen 443\n${subdomain}`)).then(() => '', (error: { stderr?: string }) => error.stderr ?? String(error));
  assert.match(refusal, 'AH00526');
});

test('proxy-config on a fresh config creates the certificate it names, so nginx -t passes at once, and says so', async () => {
  const fresh = await tempDir('wharf-proxyconf-fresh-');
  const file = join(fresh, 'wharf.yaml');
  await writeFile(file, `certsDir: ${join(fresh, 'certs')}\nbaseDomain: registry.test\nrepositories:\n  docker-local: { type: local }\n`);
  const result = await runCli(['proxy-config', 'nginx', '--out', join(fresh, 'nginx'), '--config', file]);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, `created Wharf's CA and server certificate in ${join(fresh, 'certs')} for the proxy; clients trust ${join(fresh, 'certs', 'ca.crt')}`);
  await nginxAccepts(join(fresh, 'nginx', 'wharf.conf'));
  const again = await runCli(['proxy-config', 'apache', '--out', join(fresh, 'apache'), '--config', file]);
  assert.match(again.stdout, `the proxy serves Wharf's certificate ${join(fresh, 'certs', 'server.crt')}`);
});

async function writeSnippet(text: string): Promise<string> {
  const file = join(await tempDir('wharf-snippet-'), 'wharf.conf');
  await writeFile(file, text);
  return file;
}

test('the same configuration is served at /api/proxy-config/<server>', async () => {
  const wharf = await startWharf();
  try {
    const text = await (await fetch(`${wharf.url}/api/proxy-config/nginx?method=port`)).text();
    assert.match(text, 'wharf proxy-config nginx --method port');
    assert.is((await fetch(`${wharf.url}/api/proxy-config/caddy`)).status, 400);
  } finally {
    await wharf.cleanup();
  }
});

test('proxy.offload adds the internal blob location (nginx) and mod_xsendfile (Apache); without it neither is there', async () => {
  const plain = await readFile(await generate('nginx', 'path'), 'utf8');
  assert.not.ok(plain.includes('X-Sendfile-Type') || plain.includes('internal;'), 'no offload unless configured');
  const offloading = join(dir, 'offload.yaml');
  await writeFile(offloading, `${await readFile(configFile, 'utf8')}dataDir: ${join(dir, 'data')}\ntrustedProxies: [127.0.0.1]\nproxy: { offload: true }\n`);
  for (const server of ['nginx', 'apache']) {
    const out = join(dir, `${server}-offload`);
    assert.is((await runCli(['proxy-config', server, '--method', 'subdomain', '--out', out, '--config', offloading])).code, 0);
    const text = await readFile(join(out, 'wharf.conf'), 'utf8');
    const lines = server === 'nginx'
      ? ['proxy_set_header X-Sendfile-Type X-Accel-Redirect;', 'location /_wharf/blobs/ {', 'internal;', `alias ${join(dir, 'data', 'blobs')}/;`, 'add_header Docker-Content-Digest $upstream_http_docker_content_digest always;']
      : ['RequestHeader set X-Sendfile-Type "X-Sendfile"', 'XSendFile On', `XSendFilePath ${join(dir, 'data', 'blobs')}`, 'a2enmod ssl proxy proxy_http rewrite headers xsendfile'];
    for (const line of lines) assert.ok(text.includes(line), `${server}: ${line}`);
    if (server === 'nginx') await nginxAccepts(join(out, 'wharf.conf'));
    else await apacheAccepts(join(out, 'wharf.conf'));
  }
});

test.run();
