import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

// Debian's PostgreSQL 15, started by the tests: initdb as the postgres user in a temp directory
// it owns, pg_ctl start on a free loopback port with the socket in that directory, a database
// per caller, stopped (and removed) when the test process exits.

const bin = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

let server: Promise<{ port: number; dir: string }> | null = null;

async function asPostgres(command: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args]);
}

function options(port: number, dir: string): string {
  return `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
}

async function start(): Promise<{ port: number; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-postgres-'));
  const { uid, gid } = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  await chown(dir, uid, gid);
  const data = join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options(port, dir), 'start']);
  process.once('exit', () => {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  });
  return { port, dir };
}

/** Stops this process's PostgreSQL (fast shutdown: connections are cut) and resolves with its start again. */
export async function stopPostgres(): Promise<() => Promise<void>> {
  const { port, dir } = await (server ??= start());
  const data = join(dir, 'data');
  await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  return () => asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options(port, dir), 'start']);
}

/** A connection URL to a fresh, empty database on this process's PostgreSQL. */
export async function postgresDatabase(): Promise<string> {
  server ??= start();
  const { port } = await server;
  const name = `wharf_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return `postgres://postgres@127.0.0.1:${port}/${name}`;
}
