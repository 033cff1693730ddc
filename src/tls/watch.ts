import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

// Tells when certificate files change on disk. The folders are watched rather than the files:
// renewals replace files by rename (certbot re-points symlinks in live/), which a watch on the
// old file would never see. Events come in bursts (key, then certificate), so they are gathered
// for a moment before `onChange` runs.

const settleMs = 200;

export interface FileWatch {
  close(): void;
}

export function watchFiles(paths: readonly string[], onChange: () => void): FileWatch {
  const names = new Set(paths.map((path) => basename(path)));
  let timer: NodeJS.Timeout | null = null;
  const changed = (_event: string, name: string | Buffer | null) => {
    if (name !== null && !names.has(String(name))) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; onChange(); }, settleMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const folder of new Set(paths.map((path) => dirname(path)))) {
    try {
      const watcher = watch(folder, { persistent: false }, changed);
      watcher.on('error', () => watcher.close());
      watchers.push(watcher);
    } catch { /* a folder that cannot be watched: SNI handshakes and reloads still pick changes up */ }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
