import { clientAddress, type TrustedProxies } from '../routing/proxies.js';
import type { Ctx } from './env.js';

// One line per request, written when the response has been sent (so status and bytes are the
// real ones, streamed bodies included). Lines are gathered and written once per event-loop
// turn: at thousands of requests a second, one write per line would cost more than the request.

export interface AccessLog {
  record(c: Ctx, startedAt: number, proxies: TrustedProxies): void;
}

/** Query parameters that can carry a secret (OAuth2 token requests, tokens in URLs): never logged. */
const secretParameters = /([?&](?:password|refresh_token|access_token|token|client_secret)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(secretParameters, '$1***') : url;
}

export function accessLog(write: (text: string) => void): AccessLog {
  let pending: string[] = [];
  const flush = () => {
    write(pending.join(''));
    pending = [];
  };
  return {
    record(c, startedAt, proxies) {
      const { incoming, outgoing } = c.env;
      const socket = incoming.socket;
      const peer = socket?.remoteAddress;
      // Behind a trusted proxy, the client is the one it forwards for.
      const address = clientAddress(peer, incoming.headers, proxies);
      const writtenBefore = socket?.bytesWritten ?? 0;
      outgoing.once('close', () => {
        const ms = (performance.now() - startedAt).toFixed(1);
        // Bytes this response put on the wire, headers included.
        const bytes = socket ? socket.bytesWritten - writtenBefore : '-';
        const cache = c.get('cache') ?? '-';
        const aborted = outgoing.writableFinished ? '' : ' aborted';
        if (pending.length === 0) setImmediate(flush);
        const user = c.get('user') ?? '-';
        pending.push(`${new Date().toISOString()} ${address} ${user} "${incoming.method} ${redactUrl(incoming.url ?? '')}" ${outgoing.statusCode} ${bytes} ${ms}ms ${cache}${aborted}\n`);
      });
    },
  };
}
