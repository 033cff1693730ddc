import { apiVersionHeader } from './env.js';
import { sendable } from '../store/blobs/file-body.js';
import { offloadHeader } from './offload.js';
import { effectiveRange, parseRangeHeader } from './ranges.js';
import { sendStream } from './streams.js';
import { auditTarget, readOptions, type Target } from './target.js';
import { refuseWrite } from './writes.js';

export async function headBlob(target: Target, digest: string): Promise<Response> {
  const size = await target.repository.statBlob(target.name, digest, readOptions(target));
  return new Response(null, {
    status: 200,
    headers: {
      ...apiVersionHeader,
      'Content-Length': String(size),
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
    },
  });
}

export async function getBlob(target: Target, digest: string): Promise<Response> {
  const { c, repository, name } = target;
  const etag = `"${digest}"`;
  const rangeHeader = effectiveRange(c.req.header('range'), c.req.header('if-range'), etag);
  const read = await repository.openBlob(name, digest, rangeHeader ? (length) => parseRangeHeader(rangeHeader, length) : undefined, readOptions(target));
  if (read.cache) c.env.notes.cache = read.cache;
  if ('redirect' in read) {
    // A verified, committed blob in the object store: the client fetches it there (Range included).
    return new Response(null, { status: 307, headers: { ...apiVersionHeader, Location: read.redirect, 'Docker-Content-Digest': digest, 'Content-Length': '0' } });
  }
  const { size, range, stream: body } = read;
  const common = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    ETag: etag,
  };
  // A committed blob file, asked for by a proxy that can send it (proxy.offload): it serves the
  // bytes, and the client's Range, itself.
  const offload = c.get('offload');
  const blobPath = offload && sendable(body)?.blobPath;
  const handOver = blobPath ? offloadHeader(c, offload, blobPath) : null;
  if (handOver) {
    body.destroy();
    return new Response(null, { status: 200, headers: { ...apiVersionHeader, ...common, 'Content-Length': '0', ...handOver } });
  }
  // An upstream that announced no length: the body goes out chunked.
  if (size === null) return sendStream(c, 200, common, body);
  if (!range) return sendStream(c, 200, { ...common, 'Content-Length': size }, body);
  return sendStream(c, 206, {
    ...common,
    'Content-Length': range.end - range.start + 1,
    'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
  }, body);
}

export async function deleteBlob(target: Target, digest: string): Promise<Response> {
  const { repository, name } = target;
  if (!repository.deleteBlob) throw refuseWrite(target, 'delete blobs from');
  await repository.deleteBlob(name, digest);
  target.gate.audit({ action: 'delete', target: auditTarget(target, digest), result: 'ok' });
  return new Response(null, { status: 202, headers: { ...apiVersionHeader, 'Content-Length': '0' } });
}
