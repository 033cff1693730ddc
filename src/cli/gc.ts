import { parseArgs } from 'node:util';
import type { Config } from '../config/types.js';
import { collectPolicy, openConfiguredStore } from '../storage.js';
import { collectGarbage, type CollectSummary } from '../store/gc.js';

// `wharf gc [--dry-run] [--config FILE]`: one collection now, beside a running server or not
// (the store's lease keeps collectors from overlapping). On a terminal a progress line, always a
// summary.

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function describeSummary(summary: CollectSummary): string {
  const verb = summary.dryRun ? 'would remove' : 'removed';
  return `wharf gc: ${verb} ${summary.manifests} manifests and ${summary.blobs} blobs (${bytes(summary.bytes)} freed), expired ${summary.uploads} upload sessions${summary.dryRun ? ' (dry run: nothing was changed)' : ''}\n`;
}

export async function gcCommand(args: string[], loadConfig: (file: string | undefined) => Config): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'dry-run': { type: 'boolean' } } });
  const config = loadConfig(values.config);
  const store = await openConfiguredStore(config, { recover: false });
  const terminal = process.stdout.isTTY === true;
  try {
    const summary = await collectGarbage(store, collectPolicy(config), {
      dryRun: values['dry-run'] ?? false,
      onProgress: terminal
        ? (so, phase) => { process.stdout.write(`\r\x1b[K${phase}: ${so.manifests} manifests, ${so.blobs} blobs, ${bytes(so.bytes)}`); }
        : undefined,
    });
    if (terminal) process.stdout.write('\r\x1b[K');
    process.stdout.write(describeSummary(summary));
  } finally {
    await store.close();
  }
}
