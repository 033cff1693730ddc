import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';

// The manifest GET's floor on Wharf's framework: Hono on @hono/node-server, mounted as Wharf
// mounts it (getRequestListener on node:http), with one route of Wharf's shape answering the fixed
// manifest text the way Wharf's last step does (a Response with its headers). No routing of
// repositories, access control, observation or store: what any request costs before Wharf's own
// work, beside bare node:http (bare-node.ts), so a miss can be told from a bound.
// Usage: node hono-floor.js <port> <manifest file> <media type>. Serves GET/HEAD /v2/*.

const [port, file, mediaType] = process.argv.slice(2);
const body = readFileSync(file!, 'utf8');
const headers = {
  'Docker-Distribution-API-Version': 'registry/2.0',
  'Content-Type': mediaType!,
  'Content-Length': String(Buffer.byteLength(body)),
  'Docker-Content-Digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
};
const app = new Hono();
app.all('/v2/*', (c) => new Response(c.req.method === 'HEAD' ? null : body, { status: 200, headers }));
createServer(getRequestListener(app.fetch)).listen(Number(port), '127.0.0.1');
