// Medians: every figure in the table is the median of BENCH_RUNS runs.

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * For each server, the median of each column `pick` extracts, over `runs` rounds in which the
 * servers take turns in a rotating order, so that none always goes first or always follows the
 * same one (page cache, writeback, a busy spell of the machine).
 */
export async function rotatedMedians<T>(runs: number, servers: string[], measure: (server: string) => Promise<T>, pick: (value: T) => number[]): Promise<Record<string, number[]>> {
  const samples: Record<string, number[][]> = {};
  for (let i = 0; i < runs; i++) {
    for (const server of [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)]) {
      (samples[server] ??= []).push(pick(await measure(server)));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([server, rows]) => [server, rows[0]!.map((_, column) => median(rows.map((row) => row[column]!)))]));
}

/** rotatedMedians for measures that are one number. */
export async function rotatedMedian(runs: number, servers: string[], measure: (server: string) => Promise<number>): Promise<Record<string, number>> {
  const columns = await rotatedMedians(runs, servers, measure, (value) => [value]);
  return Object.fromEntries(Object.entries(columns).map(([server, [value]]) => [server, value!]));
}
