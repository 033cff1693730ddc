import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseClientHello } from '../../src/tls/alpn-challenge.js';

// The ClientHello reader behind TLS-ALPN-01, on a real ClientHello from Node's TLS client.

async function clientHello(servername: string, protocols: string[]): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const received = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (chunk: Buffer) => { resolve(chunk); socket.destroy(); })));
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ALPNProtocols: protocols });
  client.on('error', () => {});
  const hello = await received;
  server.close();
  return hello;
}

test('reads SNI and ALPN from a ClientHello', async () => {
  const hello = await clientHello('Docker-Local.Registry.Test', ['acme-tls/1']);
  assert.equal(parseClientHello(hello), { servername: 'docker-local.registry.test', protocols: ['acme-tls/1'] });
  const browser = await clientHello('registry.test', ['h2', 'http/1.1']);
  assert.equal(parseClientHello(browser)!.protocols, ['h2', 'http/1.1']);
});

test('anything else is null, never an exception: cut short, not a handshake, not a ClientHello', async () => {
  const hello = await clientHello('registry.test', ['h2']);
  for (const cut of [3, 20, 60, hello.length - 7]) assert.is(parseClientHello(hello.subarray(0, cut)), null, `cut at ${cut}`);
  assert.is(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
  const serverHello = Buffer.from(hello);
  serverHello[5] = 2;
  assert.is(parseClientHello(serverHello), null);
});

test.run();
