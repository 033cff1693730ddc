import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { RegistryError } from '../oci/errors.js';
import { apiVersionHeader } from './env.js';
import { renderError } from './errors.js';

// Requests refused before an endpoint reads them get the same answer as every other error: the
// spec's JSON with the API-version header, and a log line. One header limit for HTTP/1.1 and h2.

/** The most request-header bytes Wharf takes (names and values), on HTTP/1.1 and HTTP/2 alike. */
export const maxHeaderBytes = 16 * 1024;

const headerLimit = `request headers are over ${maxHeaderBytes / 1024} KiB, Wharf's limit`;

/** What Node's HTTP/1.1 parser refused, as a registry error. */
function refusal(error: NodeJS.ErrnoException): RegistryError {
  if (error.code === 'HPE_HEADER_OVERFLOW') return new RegistryError('REQUEST_HEADERS_TOO_LARGE', { message: headerLimit });
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RegistryError('REQUEST_TIMEOUT', { message: 'the request headers did not arrive in time' });
  return new RegistryError('REQUEST_INVALID', { message: `malformed HTTP request (${error.code ?? error.message})` });
}

/**
 * Answers what Node's HTTP/1.1 parser refuses (on plain listeners and on TLS listeners' HTTP/1.1
 * connections) with the JSON envelope, where Node would send an empty body.
 */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // The client went away mid-request: nobody to answer (the access log marks the request aborted).
    if (error.code === 'ECONNRESET' || error.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) return void socket.destroy();
    const refused = refusal(error);
    logger.warn(`refused a request from ${socket.remoteAddress ?? '-'}: ${refused.status} ${refused.message}`);
    const body = JSON.stringify(refused.toJSON());
    const headers = { 'Content-Type': 'application/json; charset=utf-8', ...apiVersionHeader, 'Content-Length': Buffer.byteLength(body), Connection: 'close' };
    socket.end(`HTTP/1.1 ${refused.status} ${STATUS_CODES[refused.status]}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`);
  });
}

/**
 * What the Hono adapter cannot turn into a request for the app (no Host on HTTP/1.1, an invalid
 * URL), answered in the spec's JSON where the adapter would send an empty 400.
 */
export function requestErrorHandler(logger: Logger): (error: unknown) => Response {
  return (error) => {
    const reason = error instanceof Error ? error.message : String(error);
    const message = /missing host/i.test(reason) ? 'an HTTP/1.1 request needs a Host header' : `malformed request: ${reason}`;
    const refused = new RegistryError('REQUEST_INVALID', { message });
    logger.warn(`refused a request: ${refused.status} ${message}`);
    return renderError(refused);
  };
}

/** HTTP/2 has no header limit of its own below nghttp2's 64 KiB: Wharf's applies here (null: within it). */
export function headerRefusal(incoming: { httpVersionMajor: number; rawHeaders: string[] }): RegistryError | null {
  if (incoming.httpVersionMajor !== 2) return null;
  let bytes = 0;
  for (const item of incoming.rawHeaders) bytes += item.length;
  return bytes > maxHeaderBytes ? new RegistryError('REQUEST_HEADERS_TOO_LARGE', { message: headerLimit }) : null;
}
