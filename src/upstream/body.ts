import type { Readable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';

/**
 * Reads a small upstream body whole (manifests, errors, listings, tokens), refusing more than
 * `limit` bytes: an upstream that sends without end costs no more memory than that.
 */
export async function readBody(response: { body: Readable }, limit: number, sender = 'the upstream'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > limit) {
      response.body.destroy();
      throw new RegistryError('UNKNOWN', { status: 502, message: `${sender} sent more than ${limit} bytes` });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}
