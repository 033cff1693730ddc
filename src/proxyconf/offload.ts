import { join } from 'node:path';
import type { Config } from '../config/types.js';

// proxy.offload: the proxy sends blob bytes itself, with sendfile. Wharf still authorizes every
// blob GET; for a verified, committed blob file it answers with an empty body and a header that
// names the file, and the proxy serves it (Range and all) from the blob directory. The proxy
// asks for it with a request header, as Rack::Sendfile's X-Sendfile-Type, so a request that
// reaches Wharf any other way is always served by Wharf.

/** The request header a proxy offers offload with, and the answer headers it understands. */
export const offerHeader = 'X-Sendfile-Type';
export type OffloadHeader = 'X-Accel-Redirect' | 'X-Sendfile';

/** nginx's internal location over the blob directory (clients cannot request it: `internal`). */
export const accelLocation = '/_wharf/blobs/';

/** The filesystem driver's blob directory (store/blobs/filesystem.ts lays it out). */
export function blobDirectory(config: Config): string {
  return join(config.dataDir, 'blobs');
}
