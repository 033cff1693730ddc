import { join } from 'node:path';
import type { ParsedDigest } from '../oci/digest.js';

// The data directory:
//
//   <dataDir>/
//     meta.db                  SQLite (WAL): repositories, manifests, tags, references, uploads
//     blobs/<alg>/<xx>/<hex>   one file per blob digest, shared by every repository (xx = hex[0..2])
//     uploads/<uuid>           bytes of an upload session so far; resumable across restarts
//     tmp/                     files being written; emptied at start-up, never read
//
// Every name below dataDir is built from a validated digest or a UUID we generated, never from
// a client's path, so no request can reach outside this tree.

export interface Layout {
  readonly root: string;
  readonly database: string;
  readonly tmp: string;
  readonly blobs: string;
  readonly uploads: string;
  blob(digest: ParsedDigest): string;
  upload(uuid: string): string;
}

export function layout(root: string): Layout {
  return {
    root,
    database: join(root, 'meta.db'),
    tmp: join(root, 'tmp'),
    blobs: join(root, 'blobs'),
    uploads: join(root, 'uploads'),
    blob: ({ algorithm, hex }) => join(root, 'blobs', algorithm, hex.slice(0, 2), hex),
    upload: (uuid) => join(root, 'uploads', uuid),
  };
}
