import { execFileSync } from 'node:child_process';
import { startPebble } from './pebble.js';
import { freePort } from './ports.js';
import { s3Storage } from './s3.js';
import { startDistribution } from './upstream.js';

// `node services-child.js`: starts s3rver, Pebble and Distribution as tests do, prints the pid and
// command line of each ({"pid","args"} per line of a JSON list) and waits for the test to kill it.

await s3Storage();
await startPebble({ httpPort: await freePort() });
await startDistribution();
const children = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,args=']).toString().split('\n')
  .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
  .filter((match) => match !== null && !match[2]!.startsWith('sh -c') && !match[2]!.startsWith('ps '))
  .map((match) => ({ pid: Number(match![1]), args: match![2]! }));
process.stdout.write(`${JSON.stringify(children)}\n`);
// Bounded: a child nobody kills ends on its own.
setTimeout(() => process.exit(3), 120_000);
