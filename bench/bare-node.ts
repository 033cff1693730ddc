import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

// The anchor for request rates: node:http answering fixed manifest bytes from memory.
const [port, file, mediaType] = process.argv.slice(2);
const body = readFileSync(file!);
const headers = {
  'Content-Type': mediaType!,
  'Content-Length': String(body.length),
  'Docker-Content-Digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
  'Docker-Distribution-API-Version': 'registry/2.0',
};
createServer((req, res) => {
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}).listen(Number(port), '127.0.0.1');
