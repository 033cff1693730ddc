// Medians: every figure in the table is the median of BENCH_RUNS runs.

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Figures by name, then by server: figures.mbps.Wharf. */
export type Figures<F extends string> = Record<F, Record<string, number>>;

/**
 * For each figure a run returns (req/s, MB/s, …), each server's median over `runs` rounds in
 * which the servers take turns in a rotating order (Wharf, Distribution, nginx, then
 * Distribution, nginx, Wharf, …), so that none always goes first or always follows the same one
 * (page cache, writeback, a busy spell of the machine). A figure a server's runs do not return
 * is left out for that server.
 */
export async function rotatedMedians<F extends string>(runs: number, servers: string[], measure: (server: string) => Promise<Partial<Record<F, number>>>): Promise<Figures<F>> {
  const samples = new Map<F, Record<string, number[]>>();
  for (let i = 0; i < runs; i++) {
    for (const server of [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)]) {
      for (const [figure, value] of Object.entries(await measure(server)) as [F, number][]) {
        if (!samples.has(figure)) samples.set(figure, {});
        (samples.get(figure)![server] ??= []).push(value);
      }
    }
  }
  const figures = {} as Figures<F>;
  for (const [figure, byServer] of samples) {
    figures[figure] = Object.fromEntries(Object.entries(byServer).map(([server, values]) => [server, median(values)]));
  }
  return figures;
}

/** rotatedMedians for measures that are one number. */
export async function rotatedMedian(runs: number, servers: string[], measure: (server: string) => Promise<number>): Promise<Record<string, number>> {
  return (await rotatedMedians(runs, servers, async (server) => ({ value: await measure(server) }))).value;
}
