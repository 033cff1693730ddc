import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The A/B benches (bench:cold, bench:push, bench:manifest, bench:auth-cpu) measure this build
// beside other builds named on the command line, each by its dist/src/cli.js.

/** This build's cli.js as `first`, then each one given as an argument as B1, B2, … */
export function buildsToCompare(first = 'Wharf'): Record<string, string> {
  const builds: Record<string, string> = { [first]: fileURLToPath(new URL('../src/cli.js', import.meta.url)) };
  process.argv.slice(2).forEach((cli, i) => { builds[`B${i + 1}`] = resolve(cli); });
  return builds;
}

/** Runs a bench's main, reporting a failure with a non-zero exit code. */
export function runBench(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error('bench failed:', error);
    process.exitCode = 1;
  });
}
