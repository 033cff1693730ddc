// Medians: every figure in the table is the median of BENCH_RUNS runs.

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs `measure` `runs` times and returns the median of each column `pick` extracts. */
export async function medianOf<T>(runs: number, measure: () => Promise<T>, pick: (value: T) => number[]): Promise<number[]> {
  const samples: number[][] = [];
  for (let i = 0; i < runs; i++) samples.push(pick(await measure()));
  return samples[0]!.map((_, column) => median(samples.map((sample) => sample[column]!)));
}
