import { join } from 'node:path';
import { accelLocation, offerHeader, type OffloadHeader } from '../proxyconf/offload.js';
import type { TrustedProxies } from '../routing/proxies.js';
import type { Ctx } from './env.js';

// Blob GETs handed to the reverse proxy (proxy.offload; see proxyconf/offload.ts).

export interface OffloadSettings {
  blobDirectory: string;
  trustedProxies: TrustedProxies;
}

const offered = new Map<string, OffloadHeader>([['x-accel-redirect', 'X-Accel-Redirect'], ['x-sendfile', 'X-Sendfile']]);

/**
 * The header that hands `blobPath` (below the blob directory) to the proxy, when this request
 * comes from a trusted proxy that offers offload; null otherwise (Wharf sends the bytes).
 */
export function offloadHeader(c: Ctx, settings: OffloadSettings, blobPath: string): Record<string, string> | null {
  const offer = c.env.incoming.headers[offerHeader.toLowerCase()];
  const header = typeof offer === 'string' ? offered.get(offer.toLowerCase()) : undefined;
  if (!header || !settings.trustedProxies.trusts(c.env.incoming.socket?.remoteAddress)) return null;
  return { [header]: header === 'X-Accel-Redirect' ? `${accelLocation}${blobPath}` : join(settings.blobDirectory, blobPath) };
}
