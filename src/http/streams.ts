import type { Readable } from 'node:stream';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { sendsItself } from '../store/blobs/file-body.js';
import { abandoned } from '../store/blobs/pour.js';
import { chunksMayMove } from '../store/blobs/hash-thread.js';
import { apiVersionHeader, type Ctx } from './env.js';

// The one place where Node streams meet the HTTP layer. Blob bodies are piped straight into the
// raw ServerResponse: measured here, that serves a 1 GiB blob as fast as bare node:http, while a
// web ReadableStream through Hono costs 10-20%. A body that can send itself (a blob file: a ring
// of reused buffers, store/blobs/file-body.ts; a blob being fetched: batched writes,
// cache/fill-reader.ts) does so; any other is piped.

export type Headers = Record<string, string | number>;

/**
 * Sends status, headers and a streamed body. A source that fails mid-body destroys the response,
 * so the client sees a truncated transfer, never a silently short body; a client that goes away
 * releases the source. (Plain pipe: stream/promises.pipeline costs an AbortController and a
 * DOMException per response, a third of the time of a small blob GET.)
 */
export function sendStream(c: Ctx, status: number, headers: Headers, body: Readable): Response {
  const outgoing = c.env.outgoing;
  outgoing.writeHead(status, { ...apiVersionHeader, ...headers });
  body.once('error', (error) => outgoing.destroy(error));
  if (sendsItself(body)) {
    body.sendTo(outgoing);
    return RESPONSE_ALREADY_SENT;
  }
  outgoing.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(outgoing as NodeJS.WritableStream);
  return RESPONSE_ALREADY_SENT;
}

/**
 * The request body as a Node stream, read straight from the socket (no web-stream copy). Its
 * chunks are the parser's copies, nobody else's: an upload may move them to the hashing thread.
 */
export function requestBody(c: Ctx): Readable {
  const incoming = c.env.incoming;
  // Node's HTTP/2 compatibility layer ends the body of a stream the client resets (or whose DATA
  // falls short of its Content-Length) as if it were whole, after 'aborted': failed here, a cut-off
  // body is an error to whoever still reads it, as on HTTP/1.1.
  if (incoming.httpVersionMajor === 2) {
    incoming.on('error', () => undefined); // the reader's own listener, if any, gets it
    incoming.once('aborted', () => incoming.destroy(new Error('the client reset the request before its body was complete')));
  }
  return chunksMayMove(incoming);
}

/**
 * Reads a small body whole (manifests), refusing more than `limit` bytes. On refusal it stops
 * reading without destroying the socket, so the error response can still be sent.
 */
export function readLimited(body: Readable, limit: number, onTooLarge: (bytes: number) => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gone = abandoned(body);
    if (gone) return reject(gone);
    const chunks: Buffer[] = [];
    let bytes = 0;
    const cleanup = () => {
      body.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= limit) return void chunks.push(chunk);
      cleanup();
      body.pause();
      reject(onTooLarge(bytes));
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, bytes));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    body.on('data', onData).on('end', onEnd).on('error', onError);
  });
}
