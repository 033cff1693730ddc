import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import { indexTypes, schema1Types } from '../oci/mediatypes.js';
import { requireName, splitTag } from '../oci/names.js';
import type { TagInfo } from '../repos/catalog.js';
import type { RepositorySet } from '../repos/set.js';
import type { TrustedProxies } from '../routing/proxies.js';
import { decodePath } from '../routing/route.js';
import { apiCaller } from './api-caller.js';
import type { Ctx, Env } from './env.js';
import { requestInfo } from './request.js';
import { readOptionsFor } from './target.js';

// What an image is, for callers who may read it:
//   GET /api/docker/<repoKey>/info/<image>/<tag>    Wharf's tag info (Artifactory's Docker Info
//       tab): digest, sizes, platforms, config (ports, volumes, env, entrypoint, cmd, labels),
//       layer history, last pushed, last pulled, download count.
//   GET /api/storage/<repoKey>/<image>/<tag>/manifest.json[?properties[=k1,k2]|?stats]
//       Artifactory's storage API on a tag's manifest (list.manifest.json for an index, as
//       Artifactory names it; either name works): file info, its properties (docker.repoName,
//       docker.manifest, docker.manifest.digest, docker.manifest.type, sha256, docker.label.*),
//       or its download statistics.
// A virtual repository answers from the first member (locals first) that has the tag.

interface Options {
  live: () => { repositories: RepositorySet; trustedProxies: TrustedProxies };
  auth: AuthService | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Artifactory's docker.manifest.type. */
function manifestType(info: TagInfo): string {
  if (indexTypes.has(info.mediaType)) return 'ManifestList';
  return schema1Types.has(info.mediaType) ? 'ManifestV1' : 'ManifestV2';
}

export function properties(info: TagInfo): Record<string, string[]> {
  const result: Record<string, string[]> = {
    'docker.repoName': [info.image],
    'docker.manifest': [info.tag],
    'docker.manifest.digest': [info.digest],
    'docker.manifest.type': [manifestType(info)],
    sha256: [info.digest.replace(/^sha256:/, '')],
  };
  for (const image of info.images) {
    for (const [key, value] of Object.entries(image.labels)) result[`docker.label.${key}`] ??= [value];
  }
  return result;
}

/**
 * `?properties=a,b`: names separated by commas; a backslash (%5C) takes the character after it
 * literally, so `docker.label.a\,b` names the label `a,b` (Artifactory's escape for special characters).
 */
function propertyNames(list: string): string[] {
  const names = [''];
  for (let i = 0; i < list.length; i++) {
    const char = list[i]!;
    if (char === ',') names.push('');
    else names[names.length - 1] += char === '\\' && i + 1 < list.length ? list[++i]! : char;
  }
  return names;
}

/** Splits `<image>/<tag>` (a tag has no slash); throws NAME_INVALID for anything else. */
function imageAndTag(path: string): { image: string; tag: string } {
  const split = splitTag(path);
  if (!split) throw new RegistryError('NAME_INVALID', { message: 'expected <image>/<tag>', detail: { path } });
  return { image: requireName(split.image), tag: split.tag };
}

function decodedRest(c: Ctx, prefix: RegExp): string {
  return decodePath(c.req.path).replace(prefix, '').replace(/\/$/, '');
}

async function tagInfoFor(c: Ctx, options: Options, key: string, image: string, tag: string): Promise<TagInfo> {
  const { repositories, trustedProxies } = options.live();
  const caller = await apiCaller(c, options.auth, requestInfo(c, trustedProxies));
  caller.visible(key, repositories);
  caller.require(key, image, 'read');
  const repository = repositories.get(key);
  return repositories.management!.catalog.tagInfo(repository, image, tag, readOptionsFor(caller.access, repository, image));
}

export function imageInfoRoutes(app: Hono<Env>, options: Options): void {
  app.get('/api/docker/:key/info/*', async (c) => {
    const key = c.req.param('key');
    const { image, tag } = imageAndTag(decodedRest(c, /^\/api\/docker\/[^/]+\/info\//));
    const info = await tagInfoFor(c, options, key, image, tag);
    return c.json({
      ...info,
      lastPushed: iso(info.lastPushed),
      lastPulled: iso(info.lastPulled),
      properties: properties(info),
    });
  });
  app.get('/api/storage/:key/*', async (c) => {
    const key = c.req.param('key');
    const path = decodedRest(c, /^\/api\/storage\/[^/]+\//);
    const file = /^(.+)\/(list\.)?manifest\.json$/.exec(path);
    if (!file) throw new RegistryError('NAME_UNKNOWN', { message: 'Wharf answers the storage API for <image>/<tag>/manifest.json (or list.manifest.json) only', detail: { path } });
    const { image, tag } = imageAndTag(file[1]!);
    const info = await tagInfoFor(c, options, key, image, tag);
    const origin = requestInfo(c, options.live().trustedProxies).origin;
    const uri = `${origin}/api/storage/${key}/${path}`;
    const query = c.req.query();
    if ('properties' in query) {
      const all = properties(info);
      const wanted = query.properties ? propertyNames(query.properties) : Object.keys(all);
      const chosen = Object.fromEntries(wanted.filter((name) => all[name]).map((name) => [name, all[name]!]));
      if (Object.keys(chosen).length === 0) throw new RegistryError('NAME_UNKNOWN', { message: 'No properties could be found.', detail: { properties: wanted } });
      return c.json({ properties: chosen, uri });
    }
    if ('stats' in query) {
      return c.json({ uri, downloadCount: info.downloadCount, lastDownloaded: info.lastPulled ?? 0, lastDownloadedBy: null, remoteDownloadCount: 0, remoteLastDownloaded: 0 });
    }
    const hex = info.digest.replace(/^sha256:/, '');
    return c.json({
      repo: info.repository,
      path: `/${path}`,
      created: iso(info.lastPushed),
      lastModified: iso(info.lastPushed),
      lastUpdated: iso(info.lastPushed),
      downloadUri: `${origin}/v2/${info.repository}/${info.image}/manifests/${info.digest}`,
      mimeType: info.mediaType,
      size: String(info.manifestSize),
      checksums: { sha256: hex },
      originalChecksums: { sha256: hex },
      uri,
    });
  });
}
