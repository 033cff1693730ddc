import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log/logger.js';
import { logCollector, type LogCollector } from './logs.js';
import { startServer, type RunningServer } from '../../src/server.js';

export const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface TestServer {
  url: string;
  /** Every listener's URL, in config order. */
  urls: string[];
  caPath: string | null;
  dataDir: string;
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
  /** Operational log lines, each without its newline (otherwise on stderr). */
  log?: (line: string) => void;
  logFormat?: 'text' | 'json';
}

export async function startWharf(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await tempDir());
  const config = validateConfig({
    dataDir,
    certsDir: join(dataDir, 'certs'),
    ...(options.baseDomain ? { baseDomain: options.baseDomain } : {}),
    ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    listeners: options.listeners ?? [{ address: '127.0.0.1', port: 0 }],
    repositories: options.repositories ?? { 'docker-local': { type: 'local' } },
    log: { access: options.accessLog !== undefined, format: options.logFormat ?? 'text' },
  }, { baseDir: process.cwd() });
  const log = options.log;
  let server: RunningServer | null = await startServer(config, {
    ...(options.accessLog ? { writeLog: options.accessLog } : {}),
    ...(log ? { logger: createLogger({ format: options.logFormat ?? 'text', write: (line) => log(line.trimEnd()) }) } : {}),
  });
  return {
    url: server.urls[0]!,
    urls: server.urls,
    caPath: server.caPath,
    dataDir,
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
  /** Its log lines (stderr), to wait for one. */
  log: LogCollector;
}

/**
 * Starts `wharf serve` as a child process (for kill, restart and signal tests) and waits for its
 * URL. `config` is the YAML to serve (default: docker-local, no access log); it is written to
 * `<dataDir>.yaml`, and its first listener is moved to a free port.
 */
export async function spawnWharf(dataDir: string, options: { config?: string } = {}): Promise<WharfProcess> {
  const configFile = `${dataDir}.yaml`;
  await writeFile(configFile, options.config ?? 'repositories:\n  docker-local: { type: local }\nlog: { access: false }\n');
  const child = spawn(process.execPath, [cliPath, 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const log = logCollector();
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    log.chunk(chunk.toString());
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', () => {
      const match = /listening on (https?:\/\/[^\s,]+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}: ${stderr}`)));
  });
  return { url, child, stderr: () => stderr, log };
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
