import { clientAddress, type TrustedProxies } from '../routing/proxies.js';
import type { Http2Bindings, HttpBindings } from '@hono/node-server';
import type { RequestNotes } from './env.js';

// One record per request, made when the response has been sent (or abandoned), for the access
// log and the metrics. Body bytes, the same way for HTTP/1.1 and HTTP/2:
//   in:  what the parser pushes into the request stream (counted on requests that carry a body);
//   out: on HTTP/1.1, what the socket wrote for this response less its header block (Node's
//        OutgoingMessage keeps it in _header); on HTTP/2, whose socket is shared by every stream
//        of the session, what is written to the response.
// Counting through replaced methods is measured at a third of a manifest GET's time, so it is
// done only where no cheaper count exists.

/** The kind of endpoint a request was for: a bounded set, for metric labels. */
export type RouteClass = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'catalog' | 'referrers' | 'token' | 'api' | 'health' | 'metrics' | 'other';

export interface RequestRecord {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  status: number;
  /** Request body bytes received. */
  bytesIn: number;
  /** Response body bytes sent (headers not included). */
  bytesOut: number;
  seconds: number;
  /** The client's address (behind a trusted proxy, the one it forwards for). */
  client: string;
  /** The authenticated user, when access control has named one. */
  user: string | null;
  /** The repository key routing resolved, if any. */
  repository: string | null;
  host: string | null;
  userAgent: string | null;
  routeClass: RouteClass;
  /** HIT, MISS, JOIN or STALE on requests a cache answered. */
  cache: string | null;
  /** The connection closed before the response was complete. */
  aborted: boolean;
}

export type RequestSink = (record: RequestRecord) => void;

const endpointClasses: Record<string, RouteClass> = {
  base: 'base', catalog: 'catalog', manifest: 'manifest', blob: 'blob', uploads: 'upload', upload: 'upload', tags: 'tags', referrers: 'referrers',
};

/** The token service's routes: /v2/token, /api/docker/<key>/v2/token and /api/docker/<key>/v2/auth. */
const tokenPath = /^(?:\/v2\/token|\/api\/docker\/[^/]+\/v2\/(?:token|auth))$/;

/** The route class from the endpoint dispatch parsed, else from the path's first segments. */
function routeClassOf(notes: RequestNotes, url: string): RouteClass {
  const endpoint = notes.endpoint;
  if (endpoint) return endpointClasses[endpoint] ?? 'other';
  const path = url.split('?', 1)[0]!;
  if (path === '/metrics') return 'metrics';
  if (path === '/healthz' || path === '/readyz' || path === '/api/system/ping') return 'health';
  if (tokenPath.test(path)) return 'token';
  if (path.startsWith('/api/') && !path.startsWith('/api/docker/')) return 'api';
  return 'other';
}

/** The user access control named; it says "-" for anonymous callers. */
function authenticated(user: string | undefined): string | null {
  return user && user !== '-' ? user : null;
}

function byteLength(chunk: unknown, encoding?: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}

/** Counts the bytes passed to `method` on `target`, into `add`. */
function countCalls(target: object, method: 'push' | 'write' | 'end', add: (bytes: number) => void): void {
  const original = (target as Record<string, (...args: unknown[]) => unknown>)[method]!;
  (target as Record<string, unknown>)[method] = function counted(this: unknown, ...args: unknown[]) {
    if (typeof args[0] !== 'function') add(byteLength(args[0], args[1]));
    return original.apply(this, args);
  };
}

/**
 * Starts measuring the request on `incoming` and `outgoing`; `sink` gets its record once the
 * response is over, with what the handlers wrote into the notes this returns.
 */
export function observe({ incoming, outgoing }: HttpBindings | Http2Bindings, proxies: TrustedProxies, sink: RequestSink): RequestNotes {
  const startedAt = performance.now();
  const notes: RequestNotes = {};
  let bytesIn = 0;
  let bytesOut = 0;
  const method = incoming.method ?? '-';
  if (method !== 'GET' && method !== 'HEAD') countCalls(incoming, 'push', (bytes) => { bytesIn += bytes; });
  const h2 = incoming.httpVersionMajor === 2;
  const socket = incoming.socket;
  const writtenBefore = h2 ? 0 : socket?.bytesWritten ?? 0;
  if (h2) {
    countCalls(outgoing, 'write', (bytes) => { bytesOut += bytes; });
    countCalls(outgoing, 'end', (bytes) => { bytesOut += bytes; });
  }
  const sentBody = () => {
    if (method === 'HEAD') return 0;
    if (h2) return bytesOut;
    const head = (outgoing as unknown as { _header?: string | null })._header;
    return Math.max(0, (socket?.bytesWritten ?? 0) - writtenBefore - (head ? Buffer.byteLength(head) : 0));
  };
  outgoing.once('close', () => {
    const { headers } = incoming;
    const url = incoming.url ?? '/';
    sink({
      method,
      url,
      status: outgoing.statusCode,
      bytesIn,
      bytesOut: sentBody(),
      seconds: (performance.now() - startedAt) / 1000,
      client: clientAddress(socket?.remoteAddress, headers, proxies),
      user: authenticated(notes.user),
      repository: notes.repository ?? null,
      host: headers.host ?? (headers[':authority'] as string | undefined) ?? null,
      userAgent: headers['user-agent'] ?? null,
      routeClass: routeClassOf(notes, url),
      cache: notes.cache ?? null,
      aborted: !outgoing.writableFinished,
    });
  });
  return notes;
}
