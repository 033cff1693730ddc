import { RegistryError } from './errors.js';
import { digestOf, isDigest, type DigestAlgorithm } from './digest.js';
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
  imageTypes, indexTypes, schema1Types,
} from './mediatypes.js';

/** distribution-spec: registries may refuse manifests over 4 MiB; Distribution does the same. */
export const maxManifestBytes = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export type ManifestKind = 'image' | 'index' | 'schema1';

/** What the store needs to know about a manifest; the bytes themselves stay verbatim. */
export interface ParsedManifest {
  digest: string;
  mediaType: string;
  kind: ManifestKind;
  /** Blobs that must already be in the repository: config and layers (not foreign layers). */
  blobs: string[];
  /** Child manifests (index entries) that must already be in the repository. */
  children: Descriptor[];
  /** Foreign (non-distributable) layers: fetched from their urls, not from the registry. */
  foreign: Descriptor[];
  subject: Descriptor | null;
  /** For referrers: artifactType, else the config's media type (image-spec manifest.md). */
  artifactType: string | null;
  annotations: Record<string, string> | null;
  /** The size each descriptor of a stored blob or child manifest declares, with where it sits. */
  declared: DeclaredSize[];
}

export interface DeclaredSize {
  /** Where in the manifest: "config", "layers[2]", "manifests[0]". */
  where: string;
  digest: string;
  size: number;
  kind: 'blob' | 'manifest';
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', { message: `manifest invalid: ${message}` });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} is not an object`);
  const { mediaType, digest, size, urls, artifactType, annotations, platform } = value;
  if (typeof mediaType !== 'string' || mediaType.length === 0) throw invalid(`${where}.mediaType is missing`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${where}.digest ${JSON.stringify(digest)} is not a valid digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === 'string'))) throw invalid(`${where}.urls must be a list of strings`);
  if (artifactType !== undefined && typeof artifactType !== 'string') throw invalid(`${where}.artifactType must be a string`);
  if (annotations !== undefined && !isObject(annotations)) throw invalid(`${where}.annotations must be an object`);
  return {
    mediaType, digest, size,
    ...(urls ? { urls: urls as string[] } : {}),
    ...(artifactType ? { artifactType } : {}),
    ...(annotations ? { annotations: annotations as Record<string, string> } : {}),
    ...(isObject(platform) ? { platform: platform as Descriptor['platform'] } : {}),
  };
}

function descriptors(value: unknown, where: string): Descriptor[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(`${where} must be a list`);
  return value.map((item, i) => descriptor(item, `${where}[${i}]`));
}

/** The media type a manifest declares for itself, falling back to the PUT's Content-Type. */
const dockerV2Types: ReadonlySet<string> = new Set([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);

function resolveMediaType(body: Record<string, unknown>, contentType: string | undefined, pushed: boolean): string {
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  const sent = contentType?.split(';')[0]!.trim() || undefined;
  if (body.schemaVersion === 1) return sent && schema1Types.has(sent) ? sent : (body.signatures ? DOCKER_SCHEMA1_SIGNED : DOCKER_SCHEMA1);
  if (declared && sent && declared !== sent) {
    throw invalid(`Content-Type ${sent} does not match the manifest's mediaType ${declared}`);
  }
  // Docker's formats declare their type (Distribution refuses them otherwise). Taken from the
  // header alone, the same bytes could be pushed under two types, and one digest has one.
  if (pushed && !declared && sent && dockerV2Types.has(sent)) throw invalid(`a ${sent} manifest must name its mediaType`);
  const mediaType = declared ?? sent;
  if (mediaType) return mediaType;
  // OCI allows mediaType to be omitted; tell the two OCI kinds apart by shape.
  return Array.isArray(body.manifests) ? OCI_INDEX : OCI_MANIFEST;
}

/**
 * Parses and validates manifest bytes. Throws MANIFEST_INVALID (or 413) with a precise message.
 * `algorithm` names its digest: sha256, or the algorithm of the digest it is pushed or fetched by.
 * `pushed`: a client's push, held to what a push must say (Docker formats name their mediaType).
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, algorithm: DigestAlgorithm = 'sha256', pushed = false): ParsedManifest {
  if (bytes.length > maxManifestBytes) {
    throw new RegistryError('SIZE_INVALID', { status: 413, message: `manifest is ${bytes.length} bytes; the limit is ${maxManifestBytes}` });
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    throw invalid('body is not valid JSON');
  }
  if (!isObject(body)) throw invalid('body is not a JSON object');
  if (body.schemaVersion !== 1 && body.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const mediaType = resolveMediaType(body, contentType, pushed);
  const digest = digestOf(bytes, algorithm);
  const annotations = isObject(body.annotations) ? (body.annotations as Record<string, string>) : null;
  const subject = body.subject === undefined ? null : descriptor(body.subject, 'subject');
  const artifactType = typeof body.artifactType === 'string' ? body.artifactType : null;

  if (schema1Types.has(mediaType)) {
    const layers = Array.isArray(body.fsLayers) ? body.fsLayers : [];
    const blobs = layers.map((layer, i) => {
      const sum = isObject(layer) ? layer.blobSum : undefined;
      if (typeof sum !== 'string' || !isDigest(sum)) throw invalid(`fsLayers[${i}].blobSum is not a valid digest`);
      return sum;
    });
    return { digest, mediaType, kind: 'schema1', blobs: [...new Set(blobs)], children: [], foreign: [], subject: null, artifactType: null, annotations: null, declared: [] };
  }
  if (indexTypes.has(mediaType)) {
    if (!Array.isArray(body.manifests)) throw invalid('an index must have a manifests list');
    const children = descriptors(body.manifests, 'manifests');
    const declared = children.map((child, i): DeclaredSize => ({ where: `manifests[${i}]`, digest: child.digest, size: child.size, kind: 'manifest' }));
    return { digest, mediaType, kind: 'index', blobs: [], children, foreign: [], subject, artifactType, annotations, declared };
  }
  if (imageTypes.has(mediaType)) {
    const config = descriptor(body.config, 'config');
    const layers = descriptors(body.layers, 'layers');
    // Foreign (non-distributable) layers live at their urls, not in the registry.
    const foreign = layers.filter((layer) => layer.urls?.length);
    const blobs = [config, ...layers.filter((layer) => !layer.urls?.length)].map((d) => d.digest);
    // distribution-spec 1.1, listing referrers: without artifactType, the config's media type (the empty one included).
    const effectiveArtifactType = artifactType ?? config.mediaType;
    const declared: DeclaredSize[] = [{ where: 'config', digest: config.digest, size: config.size, kind: 'blob' }];
    layers.forEach((layer, i) => { if (!layer.urls?.length) declared.push({ where: `layers[${i}]`, digest: layer.digest, size: layer.size, kind: 'blob' }); });
    return { digest, mediaType, kind: 'image', blobs: [...new Set(blobs)], children: [], foreign, subject, artifactType: effectiveArtifactType, annotations, declared };
  }
  throw invalid(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
}
