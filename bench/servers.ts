import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/ports.js';

export { freePort };

// The servers a benchmark run starts on loopback, each a child process stopped by its PID.

export interface BenchServer {
  name: string;
  url: string;
  /** The HTTPS base URL, for servers started with a TLS listener too. */
  tlsUrl?: string;
  pid: number;
  /** The file the server reads a blob from (Wharf and Distribution). */
  blobFile?(digest: string): string;
  stop(): Promise<void>;
}

/** Where a blob lies below Wharf's blob directory (store/blobs/filesystem.ts): sha256/ab/abcd…. */
export function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return join(algorithm, hex.slice(0, 2), hex);
}

async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`${url} did not come up`);
}

export async function startProcess(name: string, command: string, args: string[], url: string, env?: NodeJS.ProcessEnv, onStderr?: (text: string) => void): Promise<BenchServer> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', onStderr ? 'pipe' : 'inherit'], env: env ?? process.env });
  child.stderr?.on('data', (chunk: Buffer) => onStderr?.(chunk.toString()));
  await waitForHttp(url, child);
  return {
    name,
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Runs the wharf command to completion with `input` on its standard input. */
export function wharfCommand(args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`wharf ${args[0]} exited with ${code}`))));
    child.stdin!.end(input);
  });
}

export interface WharfBenchOptions {
  /** A docker-remote repository in front of this upstream. */
  upstream?: string;
  /** Access control on, with this user allowed to deploy to docker-local; off otherwise. */
  user?: { name: string; password: string };
  /** Serving processes (`workers:`); 1, today's single process, is the default and is not written. */
  workers?: number | 'auto';
  /** proxy.offload for a proxy on 127.0.0.1 (trustedProxies): blob GETs it offers to send are handed to it. */
  offload?: boolean;
  /** Another build's dist/src/cli.js, for an A/B of two builds (bench/cold-cpu.ts); this build's unless given. */
  cli?: string;
}

/**
 * Wharf with docker-local, and docker-remote in front of `upstream` when given; plain HTTP, and a
 * self-signed TLS listener beside it (its certificate in <dir>/certs).
 */
export async function startWharf(dir: string, options: WharfBenchOptions = {}): Promise<BenchServer> {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'wharf.yaml');
  await mkdir(dir, { recursive: true });
  const remote = options.upstream ? `  docker-remote: { type: remote, url: "${options.upstream}" }\n` : '';
  const auth = options.user
    ? `permissions:\n  - { name: bench, repositories: [docker-local], users: { ${options.user.name}: [deploy] } }\n`
    : 'auth: { enabled: false }\n';
  await writeFile(config, [
    `dataDir: ${join(dir, 'data')}`,
    `certsDir: ${join(dir, 'certs')}`,
    'listeners:',
    `  - { address: 127.0.0.1, port: ${port} }`,
    `  - { address: 127.0.0.1, port: ${tlsPort}, tls: { mode: self-signed } }`,
    'repositories:',
    `  docker-local: { type: local }\n${remote}log: { access: false }\n${auth}`,
    ...(options.workers !== undefined && options.workers !== 1 ? [`workers: ${options.workers}`] : []),
    ...(options.offload ? ['trustedProxies: [127.0.0.1]', 'proxy: { offload: true }'] : []),
  ].join('\n'));
  if (options.user) await wharfCommand(['user', 'add', options.user.name, '--password-stdin', '--config', config], options.user.password);
  const server = await startProcess('Wharf', process.execPath, [options.cli ?? cli, 'serve', '--config', config], `http://127.0.0.1:${port}/v2/`);
  return { ...server, tlsUrl: `https://127.0.0.1:${tlsPort}`, blobFile: (digest) => join(wharfBlobDirectory(dir), blobPath(digest)) };
}

/** The blob directory of a Wharf started by startWharf(dir). */
export function wharfBlobDirectory(dir: string): string {
  return join(dir, 'data', 'blobs');
}

/**
 * CNCF Distribution 2.8.2 from Debian's docker-registry, filesystem storage, clean environment;
 * a pull-through proxy of `proxyOf` when given.
 */
export async function startDistribution(dir: string, proxyOf?: string): Promise<BenchServer> {
  const port = await freePort();
  const config = join(dir, 'distribution.yml');
  await mkdir(join(dir, 'distribution'), { recursive: true });
  await writeFile(config, [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'distribution')} }, delete: { enabled: true } }`,
    `http: { addr: 127.0.0.1:${port} }`,
    ...(proxyOf ? [`proxy: { remoteurl: "${proxyOf}" }`] : []),
  ].join('\n'));
  // Distribution reads every REGISTRY_* variable as configuration: start it with none.
  const server = await startProcess('Distribution', '/usr/bin/docker-registry', ['serve', config], `http://127.0.0.1:${port}/v2/`, { PATH: '/usr/bin:/bin' });
  return { ...server, blobFile: (digest) => join(dir, 'distribution', 'docker', 'registry', 'v2', 'blobs', blobPath(digest), 'data') };
}

/** nginx's temp-file directives, pointed at a directory of ours (not /var/lib/nginx). */
export function nginxTempPaths(dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${dir};`).join('\n  ');
}

/**
 * An nginx.conf for a bench nginx in the foreground: one worker, files under `dir`, the given
 * http block. Its worker runs as the bench's user, so it reads the files Wharf writes (0750).
 */
export function nginxConf(dir: string, http: string): string {
  return `daemon off;
${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 1024; }
http {
  ${nginxTempPaths(dir)}
${http}
}
`;
}

/**
 * nginx serving `root` statically with sendfile, as the ceiling for bytes from disk: rooted in
 * Wharf's blob directory, it sends the very files Wharf sends (at /sha256/ab/abcd…). One worker
 * process, as Wharf is one process: the comparison is per serving process.
 */
export async function startNginx(dir: string, root: string, tls: { cert: string; key: string }): Promise<BenchServer> {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'nginx.conf');
  await mkdir(join(dir, 'nginx-tmp'), { recursive: true });
  await writeFile(config, nginxConf(join(dir, 'nginx-tmp'), `
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    default_type application/octet-stream;
    location = / { return 204; }   # the start-up probe
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl http2;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;  # Debian's nginx 1.22 offers no TLS 1.3 unless told; Wharf (Node) negotiates 1.3
    root ${root};
    default_type application/octet-stream;
  }`));
  const server = await startProcess('nginx', '/usr/sbin/nginx', ['-c', config, '-p', dir], `http://127.0.0.1:${port}/`);
  return { ...server, url: `http://127.0.0.1:${port}/`, tlsUrl: `https://127.0.0.1:${tlsPort}` };
}

/**
 * A manifest GET's anchors, answering the manifest bytes from memory: bare node:http (the ceiling
 * for any Node server; any path) and the Hono floor (Wharf's framework with nothing of Wharf; /v2/*).
 */
export async function startManifestAnchor(kind: 'node:http' | 'Hono floor', manifestFile: string, mediaType: string): Promise<BenchServer> {
  const port = await freePort();
  const script = fileURLToPath(new URL(kind === 'node:http' ? './bare-node.js' : './hono-floor.js', import.meta.url));
  const url = `http://127.0.0.1:${port}/${kind === 'node:http' ? '' : 'v2/'}`;
  return startProcess(kind, process.execPath, [script, String(port), manifestFile, mediaType], url);
}

/** The cold pull's floor in Node (floor-proxy.ts) in front of `upstream`, its files in `dir`. */
export async function startFloorProxy(dir: string, upstream: string): Promise<BenchServer> {
  const port = await freePort();
  await mkdir(dir, { recursive: true });
  const script = fileURLToPath(new URL('./floor-proxy.js', import.meta.url));
  return startProcess('Node floor', process.execPath, [script, String(port), upstream, dir], `http://127.0.0.1:${port}/v2/`);
}
