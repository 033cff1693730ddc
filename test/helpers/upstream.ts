import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'uvu';
import { freePort } from './ports.js';
import { startWharf, tempDir, type StartOptions, type TestServer } from './server.js';
import { terminate } from './children.js';
import { killWhenGone } from './watchdog.js';

// Real upstreams for remote-repository tests: CNCF Distribution from Debian's docker-registry,
// and a counting pass-through in front of it that can also misbehave on purpose.

export interface Distribution {
  url: string;
  stop(): Promise<void>;
}

/** Starts Distribution 2.8 on loopback with filesystem storage, optionally behind htpasswd Basic auth. */
export async function startDistribution(options: { user?: string; password?: string; foreignUrls?: boolean; proxy?: { remoteurl: string; username?: string; password?: string } } = {}): Promise<Distribution> {
  const dir = await tempDir('wharf-distribution-');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: 127.0.0.1:${port} }`,
  ];
  // Distribution refuses manifests with layer URLs unless they match an allow pattern.
  if (options.foreignUrls) lines.push("validation: { manifests: { urls: { allow: ['^https?://'] } } }");
  // A pull-through cache of another registry (with the credentials it logs in with there).
  if (options.proxy) lines.push(`proxy: ${JSON.stringify(options.proxy)}`);
  if (options.user && options.password) {
    await mkdir(join(dir, 'auth'), { recursive: true });
    const entry = execFileSync('htpasswd', ['-Bbn', options.user, options.password]).toString().trim();
    await writeFile(join(dir, 'auth', 'htpasswd'), `${entry}\n`);
    lines.push(`auth: { htpasswd: { realm: test, path: ${join(dir, 'auth', 'htpasswd')} } }`);
  }
  await writeFile(join(dir, 'config.yml'), lines.join('\n'));
  // Distribution reads every REGISTRY_* variable as configuration: give it a clean environment.
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
  killWhenGone(child, dir);
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 30_000; ; await sleep(50)) {
    // Exited: it could not start (its port taken meanwhile, say); do not ask whoever holds the port.
    if (child.exitCode !== null) throw new Error(`Distribution exited with ${child.exitCode}`);
    try {
      await fetch(`${url}/v2/`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('Distribution did not start within 30 s');
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await terminate(child);
    },
  };
}

/** down: connections are cut; unavailable: every request gets 503; stall: requests get no answer. */
export type Fault = 'none' | 'cut-blob' | 'corrupt-blob' | 'down' | 'unavailable' | 'stall';

/** Counts of what reached the upstream, by method and endpoint kind. */
export type Counts = Record<string, number>;

export interface CountingProxy {
  url: string;
  counts: Counts;
  /** TCP connections accepted so far (reset() leaves it). */
  connections: () => number;
  /** Bytes of blob bodies the upstream sent through the proxy. */
  blobBytes: () => number;
  fault: Fault;
  /** Blob GETs answered with a redirect to this origin instead (a CDN on another host). */
  redirectBlobsTo: string | null;
  /** Require Bearer tokens from this proxy's own /token endpoint (Docker Hub's protocol). */
  bearer: { user: string; password: string } | null;
  /** Authorization headers seen on requests, by path. */
  authorizations: string[];
  /** Sends Docker Hub's ratelimit-remaining header; at 0, answers 429 as Hub does. */
  rateLimit: number | null;
  /** Blob bodies: the first chunk (past holdBlobsAfter bytes) goes through, the rest waits until this settles. */
  holdBlobs: Promise<void> | null;
  /** Bytes of a blob body that pass before holdBlobs holds it (0: it holds after the first chunk). */
  holdBlobsAfter: number;
  /** Manifest GETs: passed on to the target only once this settles. */
  holdManifests: Promise<void> | null;
  reset(): void;
  stop(): Promise<void>;
}

function kindOf(path: string): string {
  if (/\/blobs\/uploads/.test(path)) return 'upload';
  if (/\/blobs\//.test(path)) return 'blob';
  if (/\/manifests\//.test(path)) return 'manifest';
  if (/\/tags\/list/.test(path)) return 'tags';
  if (path.startsWith('/token')) return 'token';
  return 'other';
}

/** A pass-through in front of `target` that counts requests and can inject faults. */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  let bytes = 0;
  let connections = 0;
  const tokens = new Set<string>();
  const proxy: CountingProxy = {
    url: '',
    counts: {},
    connections: () => connections,
    blobBytes: () => bytes,
    fault: 'none',
    redirectBlobsTo: null,
    bearer: null,
    authorizations: [],
    rateLimit: null,
    holdBlobs: null,
    holdBlobsAfter: 0,
    holdManifests: null,
    reset() {
      this.counts = {};
      bytes = 0;
      this.authorizations = [];
    },
    stop: async () => undefined,
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const kind = kindOf(path);
    const key = `${req.method} ${kind}`;
    proxy.counts[key] = (proxy.counts[key] ?? 0) + 1;
    proxy.authorizations.push(req.headers.authorization ?? '');
    if (proxy.fault === 'down') return void res.socket?.destroy();
    if (proxy.fault === 'stall') return;
    if (proxy.fault === 'unavailable') {
      res.writeHead(503, { 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}');
    }
    if (proxy.rateLimit !== null) res.setHeader('ratelimit-remaining', `${proxy.rateLimit};w=21600`);
    if (proxy.rateLimit === 0) {
      res.writeHead(429, { 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}');
    }
    if (proxy.bearer && kind === 'token') {
      const expected = `Basic ${Buffer.from(`${proxy.bearer.user}:${proxy.bearer.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return void res.writeHead(401).end();
      const token = randomBytes(16).toString('hex');
      tokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ token, expires_in: 300 }));
    }
    if (proxy.bearer && !tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
      const scope = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(path)?.[1];
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${proxy.url}/token",service="test-registry"${scope ? `,scope="repository:${scope}:pull"` : ''}`,
        'content-type': 'application/json',
      });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    if (proxy.redirectBlobsTo && kind === 'blob' && req.method === 'GET') {
      res.writeHead(307, { location: `${proxy.redirectBlobsTo}${path}?signature=abc` });
      return void res.end();
    }
    const headers = { ...req.headers };
    if (proxy.bearer) delete headers.authorization;
    const forward = ({ held }: { held: boolean }) => {
      const upstream = request(`${target}${path}`, { method: req.method, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        let sent = 0;
        let held = false;
        answer.on('data', (chunk: Buffer) => {
          if (kind === 'blob') bytes += chunk.length;
          if (kind === 'blob' && proxy.fault === 'corrupt-blob') chunk = Buffer.from(chunk.map((b) => b ^ 0xff));
          if (kind === 'blob' && !held && sent >= proxy.holdBlobsAfter && proxy.holdBlobs) {
            held = true;
            answer.pause();
            void proxy.holdBlobs.then(() => answer.resume());
          }
          sent += chunk.length;
          res.write(chunk);
          if (kind === 'blob' && proxy.fault === 'cut-blob' && sent > 64 * 1024) {
            answer.destroy();
            res.socket?.destroy();
          }
        });
        answer.on('end', () => res.end());
      });
      upstream.on('error', () => res.socket?.destroy());
      if (held) upstream.end(); // a GET: no body, and the request has ended meanwhile
      else req.pipe(upstream);
    };
    if (kind === 'manifest' && req.method === 'GET' && proxy.holdManifests) return void proxy.holdManifests.then(() => forward({ held: true }));
    forward({ held: false });
  });
  server.on('connection', () => { connections++; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return proxy;
}

/** A stand-in CDN on another origin: serves blob GETs from `target`, records Authorization headers. */
export async function startCdn(target: string): Promise<{ url: string; authorizations: string[]; stop(): Promise<void> }> {
  const authorizations: string[] = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization ?? '');
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    request(`${target}${path}`, { method: req.method }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // "localhost" is another origin than "127.0.0.1" for the client, as a CDN host would be.
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;
  return { url, authorizations, stop: async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)); } };
}

export interface RemoteFixture {
  distribution: Distribution;
  proxy: CountingProxy;
  wharf: TestServer;
  stop(): Promise<void>;
}

/** Distribution, a counting pass-through in front of it, and Wharf with the repositories `configure` returns for that pass-through. */
export async function startRemoteFixture(
  configure: (upstreamUrl: string) => Record<string, unknown>,
  options: { distribution?: Parameters<typeof startDistribution>[0]; accessLog?: (text: string) => void; listeners?: StartOptions['listeners']; gc?: Record<string, unknown>; storageNow?: () => number } = {},
): Promise<RemoteFixture> {
  const distribution = await startDistribution(options.distribution);
  const proxy = await startCountingProxy(distribution.url);
  const wharf = await startWharf({
    repositories: configure(proxy.url),
    ...(options.accessLog ? { accessLog: options.accessLog } : {}),
    ...(options.listeners ? { listeners: options.listeners } : {}),
    ...(options.gc ? { gc: options.gc } : {}),
    ...(options.storageNow ? { storageNow: options.storageNow } : {}),
  });
  return {
    distribution,
    proxy,
    wharf,
    async stop() {
      await wharf.cleanup();
      await proxy.stop();
      await distribution.stop();
    },
  };
}

/** A RemoteFixture started before `suite` runs and stopped after it; its fields are set from then on. */
export function remoteFixture(suite: Test, ...args: Parameters<typeof startRemoteFixture>): RemoteFixture {
  const fixture = {} as RemoteFixture;
  suite.before(async () => { Object.assign(fixture, await startRemoteFixture(...args)); });
  suite.after(() => fixture.stop());
  return fixture;
}
