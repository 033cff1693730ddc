import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../src/config/validate.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { CollectSummary } from '../../src/store/gc.js';
import type { LifecycleHooks } from '../../src/store/lifecycle.js';
import { postgresDatabase } from './postgres.js';
import { s3Storage } from './s3.js';

export const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface TestServer {
  url: string;
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
  /** Stops the server; the data directory stays until cleanup(). */
  stop(): Promise<void>;
  cleanup(): Promise<void>;
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
  /** Operational messages (otherwise on stderr). */
  log?: (message: string) => void;
  /** The storage section; by default WHARF_TEST_STORAGE's choice (see testStorage). */
  storage?: Record<string, unknown>;
  gc?: Record<string, unknown>;
  uploads?: Record<string, unknown>;
  /** The store's clock and lifecycle hooks (tests that move past grace periods or force interleavings). */
  now?: () => number;
  hooks?: LifecycleHooks;
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
  const config = validateConfig({
    storage,
    ...(options.gc ? { gc: options.gc } : {}),
    ...(options.uploads ? { uploads: options.uploads } : {}),
    dataDir,
    certsDir: join(dataDir, 'certs'),
    ...(options.baseDomain ? { baseDomain: options.baseDomain } : {}),
    ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    listeners: options.listeners ?? [{ address: '127.0.0.1', port: 0 }],
    repositories: options.repositories ?? { 'docker-local': { type: 'local' } },
    log: { access: options.accessLog !== undefined },
  }, { baseDir: process.cwd() });
  let server: RunningServer | null = await startServer(config, {
    ...(options.accessLog ? { writeLog: options.accessLog } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.hooks ? { hooks: options.hooks } : {}),
  });
  const running = server;
  return {
    url: server.urls[0]!,
    urls: server.urls,
    caPath: server.caPath,
    dataDir,
    storage,
    collectGarbage: (collectOptions) => running.collectGarbage(collectOptions),
    storageHealth: () => running.storageHealth(),
    async stop() {
      await server?.close();
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
}

/** Starts `wharf serve` as a child process (for kill and restart tests) and waits for its URL. */
export async function spawnWharf(dataDir: string, options: { storage?: Record<string, unknown>; config?: string } = {}): Promise<WharfProcess> {
  const configFile = `${dataDir}.yaml`;
  const storage = options.storage ?? {};
  // JSON is YAML: the storage section goes in as it is.
  await writeFile(configFile, `repositories:\n  docker-local: { type: local }\nlog: { access: false }\nstorage: ${JSON.stringify(storage)}\n${options.config ?? ''}`);
  const child = spawn(process.execPath, [cliPath, 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (http:\/\/[^\s,]+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}: ${stderr}`)));
  });
  return { url, child, stderr: () => stderr };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
