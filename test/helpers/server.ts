import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log/logger.js';
import { logCollector, type LogCollector } from './logs.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { CollectSummary } from '../../src/store/gc.js';
import type { LifecycleHooks } from '../../src/store/lifecycle.js';
import type { AcmeClock } from '../../src/tls/acme.js';
import { postgresDatabase } from './postgres.js';
import { s3Storage } from './s3.js';
import { hashPassword } from '../../src/auth/passwords.js';
import type { LoginHooks } from '../../src/auth/service.js';
import { openConfiguredMetadata } from '../../src/storage.js';
import type { Metadata } from '../../src/store/metadata/index.js';

export const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface TestServer {
  url: string;
  initialAdminPassword: string | null;
  /** Swaps the permission targets, as a config reload would. */
  updatePermissions(permissions: Record<string, unknown>[]): void;
  /** Every listener's URL, in config order. */
  urls: string[];
  caPath: string | null;
  dataDir: string;
  /** The storage section the server runs with (the same is given to a restart). */
  storage: Record<string, unknown>;
  /** Runs a garbage collection in the server now. */
  collectGarbage(options?: { dryRun?: boolean }): Promise<CollectSummary>;
  /** What /readyz reports about storage. */
  storageHealth(): Promise<{ writable: boolean; reason?: string }>;
  /** The server's metadata database on a connection of its own, as another node has it (close it after use). */
  openMetadata(): Promise<Metadata>;
  /**
   * Resolves when the server has loaded the account snapshot the database holds now (after a
   * `wharf user` or `wharf token` command: what it did is known to the server then); fails after `ms`.
   */
  accountsLoaded(ms?: number): Promise<void>;
  /** Stops the server (requests in flight get `graceMs`, as the server's close takes it); the data directory stays until cleanup(). */
  stop(options?: { graceMs?: number }): Promise<void>;
  cleanup(): Promise<void>;
}

/** The account snapshots a server loads (its `snapshot` hook), to wait for one. */
function snapshotWatch() {
  let loaded = -1;
  const waiters = new Set<{ version: number; resolve: () => void }>();
  return {
    loaded(version: number) {
      loaded = version;
      for (const waiter of waiters) if (waiter.version <= version) waiter.resolve();
    },
    reach(version: number, ms: number): Promise<void> {
      if (loaded >= version) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`the server did not load account snapshot ${version} within ${ms} ms (it holds ${loaded})`));
        }, ms);
        const waiter = { version, resolve: () => { clearTimeout(timer); waiters.delete(waiter); resolve(); } };
        waiters.add(waiter);
      });
    },
  };
}

const created: string[] = [];
process.once('exit', () => created.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A fresh directory under the OS temp dir, removed when the test process exits. */
export async function tempDir(prefix = 'wharf-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Starts the real server in this process on an ephemeral port with a fresh data directory. */
export interface StartOptions {
  repositories?: Record<string, unknown>;
  dataDir?: string;
  accessLog?: (text: string) => void;
  listeners?: Record<string, unknown>[];
  baseDomain?: string;
  trustedProxies?: string[];
  /** Operational log lines, each without its newline (otherwise on stderr). */
  log?: (line: string) => void;
  logFormat?: 'text' | 'json';
  /**
   * The `auth:` block. Default { enabled: false }: the suites that test the registry API itself
   * run without access control; the access-control suites pass their own (enabled by default).
   */
  auth?: Record<string, unknown>;
  permissions?: Record<string, unknown>[];
  /** Users created before the server starts. */
  users?: { name: string; password: string; groups?: string[]; admin?: boolean }[];
  /** Audit lines (otherwise in the operational log). */
  audit?: (line: string) => void;
  /** The clock of tokens and throttling. */
  now?: () => number;
  /** Login hooks (tests that hold parallel logins). */
  loginHooks?: LoginHooks;
  /** The storage section; by default WHARF_TEST_STORAGE's choice (see testStorage). */
  storage?: Record<string, unknown>;
  gc?: Record<string, unknown>;
  uploads?: Record<string, unknown>;
  /** The `proxy:` block (offload). */
  proxy?: Record<string, unknown>;
  /** The store's clock and lifecycle hooks (tests that move past grace periods or force interleavings). */
  storageNow?: () => number;
  hooks?: LifecycleHooks;
  /** The clock of ACME renewals and retries. */
  acmeClock?: AcmeClock;
}

/**
 * The storage the end-to-end suites run on: the defaults (SQLite and the filesystem), or, with
 * WHARF_TEST_STORAGE=s3-postgres, PostgreSQL and S3 (each server gets a fresh database and bucket).
 */
export async function testStorage(choice = process.env.WHARF_TEST_STORAGE): Promise<Record<string, unknown>> {
  if (choice === 's3-postgres') return { blobs: await s3Storage(), metadata: { driver: 'postgres', url: await postgresDatabase() } };
  if (choice && choice !== 'default') throw new Error(`WHARF_TEST_STORAGE: expected default or s3-postgres, got ${choice}`);
  return {};
}

export async function startWharf(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await tempDir());
  const storage = options.storage ?? (await testStorage());
  const raw = {
    dataDir,
    storage,
    ...(options.gc ? { gc: options.gc } : {}),
    ...(options.uploads ? { uploads: options.uploads } : {}),
    ...(options.proxy ? { proxy: options.proxy } : {}),
    certsDir: join(dataDir, 'certs'),
    ...(options.baseDomain ? { baseDomain: options.baseDomain } : {}),
    ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    listeners: options.listeners ?? [{ address: '127.0.0.1', port: 0 }],
    repositories: options.repositories ?? { 'docker-local': { type: 'local' } },
    log: { access: options.accessLog !== undefined, format: options.logFormat ?? 'text' },
    auth: options.auth ?? { enabled: false },
    ...(options.permissions ? { permissions: options.permissions } : {}),
  };
  const config = validateConfig(raw, { baseDir: process.cwd() });
  if (options.users) await addUsers(config, options.users);
  const log = options.log;
  const snapshots = snapshotWatch();
  const loginHooks: LoginHooks = { ...options.loginHooks, snapshot: (version) => { options.loginHooks?.snapshot?.(version); snapshots.loaded(version); } };
  let server: RunningServer | null = await startServer(config, {
    ...(options.accessLog ? { writeLog: options.accessLog } : {}),
    ...(log ? { logger: createLogger({ format: options.logFormat ?? 'text', write: (line) => log(line.trimEnd()) }) } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
    ...(options.now ? { now: options.now } : {}),
    loginHooks,
    ...(options.storageNow ? { storageNow: options.storageNow } : {}),
    ...(options.hooks ? { storageHooks: options.hooks } : {}),
    ...(options.acmeClock ? { acmeClock: options.acmeClock } : {}),
  });
  const running = server;
  const initialAdminPassword = server.initialAdminPassword;
  return {
    url: server.urls[0]!,
    initialAdminPassword,
    updatePermissions: (permissions) => server?.updatePermissions({ ...config, permissions: validateConfig({ ...raw, permissions }, { baseDir: process.cwd() }).permissions }),
    urls: server.urls,
    caPath: server.caPath,
    dataDir,
    storage,
    collectGarbage: (collectOptions) => running.collectGarbage(collectOptions),
    storageHealth: () => running.storageHealth(),
    openMetadata: () => openConfiguredMetadata(config),
    async accountsLoaded(ms = 30_000) {
      const metadata = await openConfiguredMetadata(config);
      let version: number;
      try {
        version = await metadata.accounts.changeCounter();
      } finally {
        await metadata.close();
      }
      await snapshots.reach(version, ms);
    },
    async stop(stopOptions) {
      await server?.close(stopOptions);
      server = null;
    },
    async cleanup() {
      await server?.close();
      server = null;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface WharfProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Its output lines (stderr and stdout), to wait for one. */
  log: LogCollector;
}

/**
 * Starts `wharf serve` as a child process (for kill, restart and signal tests) and waits for its
 * URL. `config` is the YAML to serve (default: docker-local, no access log); it is written to
 * `<dataDir>.yaml`, and its first listener is moved to a free port.
 */
export async function spawnWharf(dataDir: string, options: { config?: string; env?: NodeJS.ProcessEnv } = {}): Promise<WharfProcess> {
  const configFile = `${dataDir}.yaml`;
  await writeFile(configFile, options.config ?? 'repositories:\n  docker-local: { type: local }\nlog: { access: false }\nauth: { enabled: false }\n');
  const child = spawn(process.execPath, [cliPath, 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
  });
  let stderr = '';
  const log = logCollector();
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    log.chunk(chunk.toString());
  });
  const stdout = logCollector();
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout.chunk(chunk.toString());
    log.write(stdout.lines.splice(0).join('\n'));
  });
  const url = await new Promise<string>((resolve, reject) => {
    log.waitFor(/listening on https?:\/\//, 30_000).then((line) => resolve(/listening on (https?:\/\/[^\s,]+)/.exec(line)![1]!), reject);
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}: ${stderr}`)));
  });
  return { url, child, stderr: () => stderr, log };
}

/** Runs the CLI to completion and returns its exit code and output (killed after `limitMs`, 2 min by default: code null, said in stderr). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, input?: string, limitMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => {
      stderr += `\n(the test killed it: still running after ${limitMs / 1000} s)`;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Writes `<dataDir>/cli.yaml` for `wharf <command> --config` beside a test server: its data
 * directory and its storage, so that the CLI changes the database the server reads.
 */
export async function cliConfig(server: Pick<TestServer, 'dataDir' | 'storage'>, repositories: Record<string, unknown> = { 'docker-local': { type: 'local' } }): Promise<string> {
  const file = join(server.dataDir, 'cli.yaml');
  await writeFile(file, JSON.stringify({ dataDir: server.dataDir, certsDir: join(server.dataDir, 'certs'), storage: server.storage, repositories }));
  return file;
}

/** Adds users straight to the configured metadata database (as `wharf user add` does). */
export async function addUsers(config: Config, users: NonNullable<StartOptions['users']>): Promise<void> {
  const metadata = await openConfiguredMetadata(config);
  try {
    for (const user of users) {
      const now = Date.now();
      await metadata.accounts.addUser({ name: user.name, passwordHash: await hashPassword(user.password), groups: user.groups ?? [], admin: user.admin ?? false, createdAt: now, updatedAt: now, passwordChangedAt: now });
    }
  } finally {
    await metadata.close();
  }
}
