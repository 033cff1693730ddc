import { accepts, type AcceptedTypes } from '../oci/accept.js';
import { RegistryError } from '../oci/errors.js';
import { indexTypes } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/manifest.js';
import type { Manifest } from './repository.js';

// Content negotiation for a manifest fetched by tag, as Distribution does it: a client that does
// not accept the stored index but accepts image manifests gets the linux/amd64 image of the
// index; a client that accepts neither gets MANIFEST_UNKNOWN. By digest the stored bytes are
// returned as they are: a digest names exactly those bytes.

export const defaultPlatform = { os: 'linux', architecture: 'amd64' } as const;

export async function negotiate(
  stored: Manifest,
  accepted: AcceptedTypes,
  loadChild: (digest: string) => Promise<Manifest | undefined>,
): Promise<Manifest> {
  if (accepts(accepted, stored.mediaType)) return stored;
  if (indexTypes.has(stored.mediaType)) {
    const entries = (JSON.parse(stored.content.toString('utf8')) as { manifests: Descriptor[] }).manifests;
    const entry = entries.find((d) => d.platform?.os === defaultPlatform.os && d.platform?.architecture === defaultPlatform.architecture && accepts(accepted, d.mediaType));
    const child = entry && (await loadChild(entry.digest));
    if (child) return child;
  }
  throw new RegistryError('MANIFEST_UNKNOWN', {
    message: `the manifest is ${stored.mediaType}, which the request's Accept header does not allow`,
    detail: { mediaType: stored.mediaType },
  });
}
