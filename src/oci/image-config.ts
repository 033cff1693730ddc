import type { Descriptor } from './manifest.js';

// What an image's config (image-spec config.md, Docker's image JSON) says about it, as
// Artifactory's Docker Info tab shows it: platform, created, ports, volumes, env, entrypoint,
// cmd, labels and the layer history. History entries marked empty_layer have no layer; the
// others take the manifest's layers in order (digest and compressed size), as `docker history`
// pairs them.

export interface HistoryEntry {
  created: string | null;
  createdBy: string | null;
  comment: string | null;
  emptyLayer: boolean;
  /** The layer this step made (null for an empty layer). */
  digest: string | null;
  /** Its compressed size in bytes (0 for an empty layer). */
  size: number;
}

export interface ImageDetails {
  ports: string[];
  volumes: string[];
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string | null;
  user: string | null;
  history: HistoryEntry[];
}

export interface ImageSummary {
  configDigest: string | null;
  created: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  size: number;
  labels: Record<string, string>;
  details: ImageDetails;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const strings = (value: unknown): string[] | null => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : null);
const keys = (value: unknown): string[] => (isObject(value) ? Object.keys(value).sort() : []);

function layerDescriptors(manifest: Json): Descriptor[] {
  return Array.isArray(manifest.layers) ? (manifest.layers.filter(isObject) as unknown as Descriptor[]) : [];
}

/** The summary of an image manifest and its config (null when the config could not be read or parsed). */
export function summarizeImage(manifestBytes: Uint8Array, configBytes: Uint8Array | null): ImageSummary {
  const manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as Json;
  const configDescriptor = isObject(manifest.config) ? (manifest.config as unknown as Descriptor) : null;
  const layers = layerDescriptors(manifest);
  let config: Json = {};
  if (configBytes) {
    try {
      const parsed = JSON.parse(Buffer.from(configBytes).toString('utf8')) as unknown;
      if (isObject(parsed)) config = parsed;
    } catch {
      // Not JSON (an artifact's config): no image details.
    }
  }
  const runtime = isObject(config.config) ? config.config : {};
  const labels: Record<string, string> = {};
  if (isObject(runtime.Labels)) for (const [key, value] of Object.entries(runtime.Labels)) if (typeof value === 'string') labels[key] = value;
  return {
    configDigest: configDescriptor?.digest ?? null,
    created: text(config.created),
    os: text(config.os),
    architecture: text(config.architecture),
    variant: text(config.variant),
    size: (configDescriptor?.size ?? 0) + layers.reduce((total, layer) => total + (Number(layer.size) || 0), 0),
    labels,
    details: {
      ports: keys(runtime.ExposedPorts),
      volumes: keys(runtime.Volumes),
      env: strings(runtime.Env) ?? [],
      entrypoint: strings(runtime.Entrypoint),
      cmd: strings(runtime.Cmd),
      workingDir: text(runtime.WorkingDir) || null,
      user: text(runtime.User) || null,
      history: history(config, layers),
    },
  };
}

function history(config: Json, layers: Descriptor[]): HistoryEntry[] {
  const steps = Array.isArray(config.history) ? config.history.filter(isObject) : [];
  const entries: HistoryEntry[] = [];
  let next = 0;
  for (const step of steps) {
    const emptyLayer = step.empty_layer === true;
    const layer = emptyLayer ? undefined : layers[next++];
    entries.push({
      created: text(step.created),
      createdBy: text(step.created_by),
      comment: text(step.comment),
      emptyLayer,
      digest: layer?.digest ?? null,
      size: layer ? Number(layer.size) || 0 : 0,
    });
  }
  // Layers the history does not describe (no history at all, or a shorter one).
  for (const layer of layers.slice(next)) {
    entries.push({ created: null, createdBy: null, comment: null, emptyLayer: false, digest: layer.digest, size: Number(layer.size) || 0 });
  }
  return entries;
}
