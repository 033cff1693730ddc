import { userInfo } from 'node:os';
import { auditLine, type AuditEvent } from '../auth/audit.js';
import type { Config } from '../config/types.js';
import { openConfiguredMetadata } from '../storage.js';
import type { Accounts } from '../store/metadata/types.js';

// What `wharf user` and `wharf token` share: the accounts of the configured metadata database
// (SQLite in the data directory, or PostgreSQL), and their audit lines (on standard error, like
// the server's operational log).

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export async function withAccounts<T>(config: Config, work: (accounts: Accounts) => Promise<T>): Promise<T> {
  const metadata = await openConfiguredMetadata(config);
  try {
    return await work(metadata.accounts);
  } finally {
    await metadata.close();
  }
}

export function auditCli(event: Omit<AuditEvent, 'who' | 'from'>): void {
  process.stderr.write(`wharf: ${auditLine({ who: `cli:${userInfo().username}`, from: 'cli', ...event })}\n`);
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Prints rows as aligned columns under a header. */
export function columns(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function isoDate(ms: number | null): string {
  if (ms === null) return '-';
  const date = new Date(ms);
  // Past what a Date holds (an expiry stored before --expires had a limit): never reached.
  return Number.isNaN(date.getTime()) ? 'never' : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
