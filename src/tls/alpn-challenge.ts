import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type Server } from 'node:tls';

// ACME TLS-ALPN-01 (RFC 8737): the CA connects to :443 offering only the "acme-tls/1" protocol
// and expects a self-signed certificate for the name that carries the key authorization. Node
// chooses the certificate before it knows the client's protocols, so the listener reads each
// connection's ClientHello first: challenge connections get the challenge certificate, every
// other connection goes on, bytes put back, to the server's own TLS handling.

const acmeTlsProtocol = 'acme-tls/1';

export interface ClientHello {
  servername: string | null;
  protocols: string[];
}

/** SNI and ALPN from a TLS record holding a ClientHello; null if it is not one or is cut short. */
export function parseClientHello(record: Buffer): ClientHello | null {
  let at = 0;
  const need = (bytes: number) => { if (at + bytes > record.length) throw new RangeError('short'); };
  const u8 = () => { need(1); return record[at++]!; };
  const u16 = () => { need(2); const value = record.readUInt16BE(at); at += 2; return value; };
  const skip = (bytes: number) => { need(bytes); at += bytes; };
  try {
    if (u8() !== 22) return null; // handshake record
    skip(4); // version, length
    if (u8() !== 1) return null; // ClientHello
    skip(3 + 2 + 32); // length, client_version, random
    skip(u8()); // session id
    skip(u16()); // cipher suites
    skip(u8()); // compression methods
    const end = u16() + at;
    need(end - at);
    const hello: ClientHello = { servername: null, protocols: [] };
    while (at + 4 <= end) {
      const type = u16();
      const extensionEnd = u16() + at;
      if (type === 0) { // server_name: list length, then (type 0, length, name)
        skip(2 + 1);
        const length = u16();
        need(length);
        hello.servername = record.toString('latin1', at, at + length).toLowerCase();
      } else if (type === 16) { // ALPN: list length, then (length, protocol)*
        const listEnd = u16() + at;
        while (at < listEnd) {
          const length = u8();
          need(length);
          hello.protocols.push(record.toString('latin1', at, at + length));
          at += length;
        }
      }
      at = extensionEnd;
    }
    return hello;
  } catch (error) {
    if (error instanceof RangeError) return null;
    throw error;
  }
}

/** Reads the first TLS record (the ClientHello) and puts every byte read back on the socket. */
function readFirstRecord(socket: Socket): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (record: Buffer | null) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.setTimeout(0);
      socket.pause();
      if (length > 0) socket.unshift(Buffer.concat(chunks, length));
      resolve(record);
    };
    const onEnd = () => done(null);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      if (head[0] !== 22) return done(null); // not a TLS handshake: TLS will say so
      if (head.length < 5) return;
      const recordLength = 5 + head.readUInt16BE(3);
      // A ClientHello fits one record (<= 16 KiB); a record that never completes is TLS's problem.
      if (head.length >= recordLength) done(head.subarray(0, recordLength));
      else if (recordLength > 16_384 + 5) done(null);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    // A ClientHello comes at once; a silent connection must not hold up a graceful shutdown long.
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

/**
 * Makes a TLS server answer TLS-ALPN-01 challenges: `certificateFor(name)` gives the challenge
 * key and certificate while an order waits on that name.
 */
export function answerAlpnChallenges(server: Server, certificateFor: (name: string) => { key: string; cert: string } | undefined): void {
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.once('error', () => socket.destroy());
    void readFirstRecord(socket).then((record) => {
      const hello = record && parseClientHello(record);
      if (!hello || hello.protocols.length !== 1 || hello.protocols[0] !== acmeTlsProtocol) {
        for (const handler of handlers) handler.call(server, socket);
        return;
      }
      const challenge = hello.servername ? certificateFor(hello.servername) : undefined;
      if (!challenge) {
        socket.destroy();
        return;
      }
      const tlsSocket = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext(challenge), ALPNProtocols: [acmeTlsProtocol] });
      tlsSocket.once('secure', () => tlsSocket.end());
      tlsSocket.once('error', () => tlsSocket.destroy());
    });
  });
}
