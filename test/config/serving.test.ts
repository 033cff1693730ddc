import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { configFile, problem } from '../helpers/config.js';

// workers, proxy.offload and downloads.memory: defaults, and mistakes named by their key.

const local = 'repositories:\n  docker-local: { type: local }\n';

test('defaults: workers 1, no offload, 256 MiB for cold pulls ahead of the disk', async () => {
  const config = loadConfig(await configFile(local), {}, {});
  assert.is(config.workers, 1);
  assert.is(config.proxy.offload, false);
  assert.is(config.downloads.memory, 256 << 20);
  assert.is(loadConfig(await configFile(`${local}workers: auto\n`), {}, {}).workers, 'auto');
  const set = loadConfig(await configFile(`${local}workers: 3\ndownloads: { memory: 64MiB }\ntrustedProxies: [127.0.0.1]\nproxy: { offload: true }\n`), {}, {});
  assert.equal([set.workers, set.downloads.memory, set.proxy.offload], [3, 64 << 20, true]);
});

test('bad values name their key', async () => {
  assert.is(await problem(`${local}workers: 0\n`), 'workers: expected auto or a whole number of at least 1, got number 0');
  assert.is(await problem(`${local}workers: many\n`), 'workers: expected auto or a whole number of at least 1, got "many"');
  assert.is(await problem(`${local}downloads: { memory: lots }\n`), 'downloads.memory: expected a size like 512MiB or 50GiB, got "lots"');
  assert.is(await problem(`${local}proxy: { offload: true }\n`), 'proxy.offload: needs trustedProxies: only requests from the proxy may be answered with X-Accel-Redirect or X-Sendfile');
  assert.is(await problem(`${local}trustedProxies: [127.0.0.1]\nproxy: { offload: true }\nstorage: { blobs: { driver: s3, bucket: wharf-blobs } }\n`),
    'proxy.offload: needs storage.blobs.driver: filesystem (the proxy reads the blob files); with s3, use storage.blobs.redirect');
  assert.is(await problem(`${local}proxy: { sendfile: true }\n`), 'proxy.sendfile: unknown key (allowed here: offload)');
});

test.run();
