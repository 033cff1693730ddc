import { createReadStream } from 'node:fs';
import type { Transfer } from './load.js';
import { cpuSeconds } from './proc.js';
import { rotatedMedians, type Figures } from './stats.js';
import type { Row } from './table.js';

// Blob rows that cannot flatter: each server sends the blob from its file (nginx from the very
// file Wharf stores), every measured run starts with that file read through once (so all start
// from the same page cache), the servers take turns in a rotating order, and the CPU time of each
// server's processes during the run is counted per GB sent.

/** One server's side of a blob row. */
export interface BlobSource {
  url: string;
  /** The file it sends the blob from. */
  file: string;
  /** The processes that serve it (their workers are counted with them). */
  pids: number[];
}

/** Reads a file through and drops the bytes: it is in the page cache afterwards. */
export async function warmFile(file: string): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) void chunk;
}

async function cpuOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSeconds(pid);
  return total;
}

export interface BlobRunOptions<T extends Transfer> {
  runs: number;
  sources: Record<string, BlobSource>;
  /** One measured run against a URL. */
  load: (url: string) => Promise<T>;
  /** The untimed warm-up of each server before the rounds (code paths, JIT); one run of `load` unless given. */
  warmUp?: (url: string) => Promise<unknown>;
}

/** Medians over rotating runs of what `load` measures, and of the servers' CPU seconds per GB sent (cpuPerGB). */
export async function blobFigures<T extends Transfer>(label: string, options: BlobRunOptions<T>): Promise<Figures<(keyof T & string) | 'cpuPerGB'>> {
  const { runs, sources, load, warmUp = load } = options;
  for (const source of Object.values(sources)) await warmUp(source.url);
  return rotatedMedians<(keyof T & string) | 'cpuPerGB'>(runs, Object.keys(sources), async (server) => {
    const source = sources[server]!;
    console.log(`bench: ${label} — ${server}`);
    await warmFile(source.file);
    const before = await cpuOf(source.pids);
    const result = await load(source.url);
    const cpu = (await cpuOf(source.pids)) - before;
    return { ...result, cpuPerGB: cpu / (result.bytes / 1e9) } as Partial<Record<(keyof T & string) | 'cpuPerGB', number>>;
  });
}

/** The row of the servers' CPU seconds per GB sent. */
export function cpuRow(label: string, figures: Figures<'cpuPerGB'>): Row {
  return { label, unit: 's/GB', target: 'reported', values: figures.cpuPerGB };
}
