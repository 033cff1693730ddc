import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';
import { whenGone } from './watchdog.js';

// Debian's PostgreSQL 15, started by the tests: initdb as the postgres user in a temp directory
// it owns, pg_ctl start on a free loopback port with the socket in that directory, a database
// per caller. A watchdog stops it (pg_ctl stop -m immediate) and removes the directory when the
// test process is gone, however it ended: a SIGKILLed run leaves no postmaster behind.

const bin = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

interface Postgres {
  port: number;
  dir: string;
  /** The postmaster's pid. */
  pid: number;
}

let server: Promise<Postgres> | null = null;

async function asPostgres(command: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args]);
}

function options(port: number, dir: string): string {
  return `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
}

async function start(): Promise<Postgres> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-postgres-'));
  const data = join(dir, 'data');
  // Armed before anything starts. Should this process die during pg_ctl start, the stop may come
  // before the postmaster is up; it then shuts itself down on finding its lock file gone.
  whenGone('runuser -u postgres -- "$1" -D "$2" -m immediate stop; rm -rf "$3"', [join(bin, 'pg_ctl'), data, dir]);
  const { uid, gid } = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  await chown(dir, uid, gid);
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options(port, dir), 'start']);
  const pid = Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return { port, dir, pid };
}

/** This process's PostgreSQL, started on first use. */
export function postgresServer(): Promise<Postgres> {
  server ??= start();
  return server;
}

/** Stops this process's PostgreSQL (fast shutdown: connections are cut) and resolves with its start again (its pid is then another). */
export async function stopPostgres(): Promise<() => Promise<void>> {
  const { port, dir } = await postgresServer();
  const data = join(dir, 'data');
  await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  return () => asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options(port, dir), 'start']);
}

/** A connection URL to a fresh, empty database on this process's PostgreSQL. */
export async function postgresDatabase(): Promise<string> {
  const { port } = await postgresServer();
  const name = `wharf_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return `postgres://postgres@127.0.0.1:${port}/${name}`;
}
