import { loadConfig } from '../../src/config/load.js';
import { collectPolicy, openConfiguredStore } from '../../src/storage.js';
import { collectGarbage } from '../../src/store/gc.js';

// `node paused-gc.js CONFIG N`: the collection `wharf gc --config CONFIG` runs (same config, store
// and collectGarbage), stopped in the middle of deleting bytes: once its Nth blob deletion is
// done it prints "paused" and holds that deletion open (the rest of its batch goes on) until the
// test kills it. The kill -9 test's interleaving, forced instead of hoped for from timing.

const [configFile, pauseAfter] = process.argv.slice(2);
const config = loadConfig(configFile!);
const store = await openConfiguredStore(config, { recover: false });
const remove = store.blobs.delete.bind(store.blobs);
let deleted = 0;
store.blobs.delete = async (digest) => {
  await remove(digest);
  if (++deleted !== Number(pauseAfter)) return;
  process.stdout.write('paused\n');
  // Bounded: a child nobody kills ends on its own.
  await new Promise((resolve) => setTimeout(resolve, 120_000));
  process.exit(3);
};
await collectGarbage(store, collectPolicy(config));
process.stderr.write(`the collection ended after ${deleted} deletions without pausing\n`);
process.exit(4);
