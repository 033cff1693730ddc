import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nginxTempPaths } from '../../bench/servers.js';
import { waitForPort } from './ports.js';
import { terminate } from './children.js';

// Debian's nginx and Apache as installed (/etc/nginx, /etc/apache2), copied into a temp dir with
// a generated Wharf site dropped in the way the snippet's header says: nginx's conf.d/wharf.conf;
// Apache's sites-available/wharf.conf enabled by a symlink, with the modules it needs enabled by
// symlinks as a2enmod makes them. What changes in the copy: absolute paths point into it, logs
// and pid files live in it, and for a live run every listen port is moved to a free one.

const run = promisify(execFile);

/** Listen ports to move: generated (or stock) port → free loopback port. */
export type PortMap = Record<number, number>;

export interface StockProxy {
  /** `nginx -t` / `apache2 -t`: rejects with the server's own message when the config is refused. */
  check(): Promise<string>;
  /** Starts it in the foreground on the remapped ports. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Moves listen directives (nginx and Apache forms) to the mapped ports; IPv6 twins of moved ports go. */
export function remapPorts(text: string, ports: PortMap): string {
  const to = (port: string) => ports[Number(port)];
  return text
    .replace(/^(\s*)listen (\[::\]:)?(\d+)([^;]*);\n/gm, (whole, indent: string, v6: string | undefined, port: string, rest: string) => {
      if (!to(port)) return whole;
      return v6 ? '' : `${indent}listen 127.0.0.1:${to(port)}${rest};\n`;
    })
    .replace(/\$host:(\d+)/g, (whole, port: string) => (to(port) ? `$host:${to(port)}` : whole))
    .replace(/^(\s*)Listen (\d+)\s*$/gm, (whole, indent: string, port: string) => (to(port) ? `${indent}Listen 127.0.0.1:${to(port)}` : whole))
    .replace(/<VirtualHost \*:(\d+)>/g, (whole, port: string) => (to(port) ? `<VirtualHost *:${to(port)}>` : whole))
    .replace(/X-Forwarded-Port "(\d+)"/g, (whole, port: string) => (to(port) ? `X-Forwarded-Port "${to(port)}"` : whole));
}

async function rewrite(file: string, change: (text: string) => string): Promise<void> {
  await writeFile(file, change(await readFile(file, 'utf8')));
}

function foreground(command: string, args: string[], env: NodeJS.ProcessEnv, ports: PortMap): { start(): Promise<void>; stop(): Promise<void> } {
  let child: ChildProcess | null = null;
  return {
    async start() {
      const started = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
      child = started;
      await Promise.all(Object.values(ports).map((port) => waitForPort(port, started)));
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await terminate(child);
    },
  };
}

export async function stockNginx(dir: string, snippet: string, ports: PortMap = {}): Promise<StockProxy> {
  const etc = join(dir, 'nginx');
  await cp('/etc/nginx', etc, { recursive: true, verbatimSymlinks: true });
  await mkdir(join(dir, 'log'), { recursive: true });
  await rewrite(join(etc, 'nginx.conf'), (text) => text
    .replaceAll('/etc/nginx/', `${etc}/`)
    .replace(/^pid .*;$/m, `pid ${dir}/nginx.pid;`)
    .replaceAll('/var/log/nginx/', `${dir}/log/`));
  // sites-enabled/default links to /etc/nginx/sites-available/default: link the copy instead.
  for (const name of await readdir(join(etc, 'sites-enabled'))) {
    await rm(join(etc, 'sites-enabled', name));
    await symlink(join(etc, 'sites-available', name), join(etc, 'sites-enabled', name));
    await rewrite(join(etc, 'sites-available', name), (text) => remapPorts(text, ports));
  }
  // Temp files beside the copy rather than in /var/lib/nginx (other test runs share this machine).
  await writeFile(join(etc, 'conf.d', 'temp-paths.conf'), `${nginxTempPaths(dir)}\n`);
  await writeFile(join(etc, 'conf.d', 'wharf.conf'), remapPorts(snippet, ports));
  const args = ['-c', join(etc, 'nginx.conf')];
  const server = foreground('nginx', [...args, '-g', 'daemon off;'], process.env, ports);
  return {
    async check() {
      const { stderr } = await run('nginx', ['-t', ...args]);
      return stderr;
    },
    ...server,
  };
}

/**
 * The modules the Apache snippet needs, as `a2enmod ssl proxy proxy_http rewrite headers xsendfile`
 * enables them (with ssl's socache_shmcb; xsendfile for proxy.offload).
 */
const apacheModules = ['ssl', 'socache_shmcb', 'proxy', 'proxy_http', 'rewrite', 'headers', 'xsendfile'];

export async function stockApache(dir: string, snippet: string, ports: PortMap = {}): Promise<StockProxy> {
  const root = join(dir, 'apache2');
  await cp('/etc/apache2', root, { recursive: true, verbatimSymlinks: true });
  const available = await readdir(join(root, 'mods-available'));
  const enabled = new Set(await readdir(join(root, 'mods-enabled')));
  for (const module of apacheModules) {
    for (const file of [`${module}.load`, `${module}.conf`]) {
      if (available.includes(file) && !enabled.has(file)) await symlink(`../mods-available/${file}`, join(root, 'mods-enabled', file));
    }
  }
  await writeFile(join(root, 'sites-available', 'wharf.conf'), remapPorts(snippet, ports));
  await symlink('../sites-available/wharf.conf', join(root, 'sites-enabled', 'wharf.conf'));
  await rewrite(join(root, 'ports.conf'), (text) => remapPorts(text, ports));
  for (const name of await readdir(join(root, 'sites-available'))) {
    if (name !== 'wharf.conf') await rewrite(join(root, 'sites-available', name), (text) => remapPorts(text, ports));
  }
  // What /etc/apache2/envvars sets for apache2ctl, pointed into the copy.
  const env = {
    ...process.env, APACHE_RUN_USER: 'www-data', APACHE_RUN_GROUP: 'www-data', APACHE_PID_FILE: join(dir, 'apache2.pid'),
    APACHE_RUN_DIR: join(dir, 'run'), APACHE_LOCK_DIR: join(dir, 'lock'), APACHE_LOG_DIR: join(dir, 'log'), LANG: 'C',
  };
  for (const sub of ['run', 'lock', 'log']) await mkdir(join(dir, sub), { recursive: true });
  const server = foreground('apache2', ['-d', root, '-DFOREGROUND'], env, ports);
  return {
    async check() {
      const { stderr } = await run('apache2', ['-d', root, '-t'], { env });
      return stderr;
    },
    ...server,
  };
}
