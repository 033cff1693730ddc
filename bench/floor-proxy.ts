import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { createServer, get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

// The cold pull's floor in Node: the least any Node pull-through proxy does with a blob. Each
// upstream chunk is hashed, written to a temp file and to the client, with the upstream paused
// while either is backed up (node:http and fs streams, no cache, no metadata, no limits); the
// file is renamed once the digest verifies. What a proxy must do per byte on these cores.
// Usage: node floor-proxy.js <port> <upstream origin> <dir>. Paths are the upstream's /v2/ paths.

const [port, upstream, dir] = process.argv.slice(2) as [string, string, string];

/** Pauses `source` until every target that asked for it has drained. */
function pauseUntilDrained(source: IncomingMessage, targets: Writable[]): void {
  source.pause();
  let waiting = targets.length;
  for (const target of targets) target.once('drain', () => --waiting === 0 && source.resume());
}

createServer((request, response) => {
  if (request.url === '/v2/') return void response.end('{}');
  get(`${upstream}${request.url}`, { headers: { accept: request.headers.accept ?? '*/*' } }, (upstreamResponse) => {
    response.writeHead(upstreamResponse.statusCode!, {
      'Content-Type': upstreamResponse.headers['content-type'] ?? 'application/octet-stream',
      'Content-Length': upstreamResponse.headers['content-length'] ?? '0',
    });
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(request.url!)?.[1];
    if (!digest || upstreamResponse.statusCode !== 200) return void upstreamResponse.pipe(response);
    const hash = createHash('sha256');
    const temp = join(dir, `${digest.slice(7)}.partial`);
    const file = createWriteStream(temp, { highWaterMark: 1 << 20 });
    upstreamResponse.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      const backedUp = [file, response].filter((target) => !target.write(chunk));
      if (backedUp.length > 0) pauseUntilDrained(upstreamResponse, backedUp);
    });
    upstreamResponse.on('end', () => {
      const verified = `sha256:${hash.digest('hex')}` === digest;
      response.end();
      file.end(() => void (verified ? rename(temp, join(dir, digest.slice(7))) : rm(temp)));
    });
  });
}).listen(Number(port), '127.0.0.1');
