import { RegistryError } from '../oci/errors.js';
import type { ByteRange } from '../repos/repository.js';

// RFC 9110 §14 byte ranges for blob GET. One range is served; a multi-range or malformed header
// is ignored (the whole blob is sent), which the RFC allows.

/**
 * The Range a blob GET is answered with: none when If-Range names anything but the blob's strong
 * ETag (RFC 9110 §13.1.5: a date, or another tag, means the client wants the whole blob; Wharf
 * sends no Last-Modified, so no date matches).
 */
export function effectiveRange(range: string | undefined, ifRange: string | undefined, etag: string): string | undefined {
  return ifRange === undefined || ifRange.trim() === etag ? range : undefined;
}

export function parseRangeHeader(header: string | undefined, size: number): ByteRange | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  const [first, last] = [match[1]!, match[2]!];
  const range = first === ''
    ? { start: Math.max(0, size - Number(last)), end: size - 1 }
    : { start: Number(first), end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
  if (range.start >= size || range.end < range.start || (first === '' && Number(last) === 0)) {
    throw new RegistryError('SIZE_INVALID', {
      status: 416,
      message: `range ${header} is not satisfiable for a blob of ${size} bytes`,
      detail: { size },
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  return range;
}

/**
 * distribution-spec PATCH Content-Range: "<start>-<end>" (inclusive). The RFC form
 * "bytes <start>-<end>/<total|*>" is accepted too, as curl users send it.
 */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const range = match ? { start: Number(match[1]), end: Number(match[2]) } : null;
  if (!range || range.end < range.start) {
    // Malformed is a bad request (400); only a well-formed range out of order is 416 (store/).
    throw new RegistryError('BLOB_UPLOAD_INVALID', { message: `invalid Content-Range ${JSON.stringify(header)}; expected <start>-<end>` });
  }
  return range;
}

/** The upload progress header: "0-<last byte>", and "0-0" while empty (as Distribution sends). */
export function uploadRangeHeader(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}
