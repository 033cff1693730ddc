import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import { isValidName, requireName, splitTag } from '../oci/names.js';
import type { Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import type { TrustedProxies } from '../routing/proxies.js';
import { decodePath, requireRepositoryKey, type Route } from '../routing/route.js';
import { unknownRepository } from './dispatch.js';
import { apiVersionHeader, type Env } from './env.js';
import type { Gate } from './gate.js';
import { openGate, requestInfo } from './request.js';

// Artifactory's "Delete Item" for Docker repositories, where an image is a folder and each tag a
// folder inside it:
//   DELETE /artifactory/<repoKey>/<image>         the whole image: tags, manifests, blob links
//   DELETE /artifactory/<repoKey>/<image>/<tag>   one tag (its manifest goes at the next
//                                                  collection if nothing else keeps it)
// A path that names an image the caller may delete is the image; otherwise its last segment is a
// tag of the image before it. 204 on success, as Artifactory answers. Layers no longer used
// disappear at the next garbage collection; an image left without manifests leaves the catalog.
// The caller is authorized before the key is looked up, as on the registry routes.

interface Context {
  gate: Gate;
  /** How the image is named in challenges and denials: the repository-path form. */
  scope: Route;
  key: string;
  repositories: RepositorySet;
  /** What follows the repository key. */
  path: string;
}

interface Entry {
  method: 'DELETE';
  handle: (context: Context) => Promise<void>;
}

/**
 * The repository, once the caller is authorized there: only then is it said whether the key
 * exists and what kind of repository it is.
 */
type Deletable = Repository & Required<Pick<Repository, 'deleteImage' | 'deleteManifest'>>;

function deletable({ gate, scope, key, repositories }: Context): Deletable {
  const repository = repositories.find(key);
  if (!repository) throw unknownRepository(key, repositories, gate, scope);
  if (!repository.deleteImage || !repository.deleteManifest) {
    // The path takes DELETE only, which this repository does not: an empty Allow (RFC 9110 §10.2.1).
    throw new RegistryError('UNSUPPORTED', { message: `cannot delete images from ${key}: it is a ${repository.kind} repository`, detail: { repository: key, kind: repository.kind }, headers: { Allow: '' } });
  }
  return repository as Deletable;
}

async function deleteImage(context: Context, name: string): Promise<void> {
  const { gate, scope, key } = context;
  gate.require(scope, key, name, 'delete');
  await deletable(context).deleteImage(name);
  gate.audit({ action: 'delete', target: `${key}/${name}`, result: 'ok' });
}

async function deleteTag(context: Context, { image, tag }: { image: string; tag: string }): Promise<void> {
  const { gate, scope, key, path } = context;
  // A caller who may not delete here is told the item as their path names it (docker-prod/pg/img),
  // not the image before its last segment (docker-prod/pg), which they did not name.
  if (gate.access?.verdict(key, image, 'delete') === 'denied') gate.deny(scope, key, path, 'delete');
  gate.require(scope, key, image, 'delete');
  await deletable(context).deleteManifest(image, tag).catch((error: unknown) => {
    throw error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN'
      ? new RegistryError('NAME_UNKNOWN', { message: `no image ${path} and no tag ${tag} of ${image} in ${key}`, detail: { path } })
      : error;
  });
  gate.audit({ action: 'delete', target: `${key}/${image}:${tag}`, result: 'ok' });
}

async function deleteImageOrTag(context: Context): Promise<void> {
  const { gate, key, path } = context;
  // The tag is split off before the image is validated: tags may have upper case, names may not.
  const split = splitTag(path);
  const tagged = split && isValidName(split.image) ? split : null;
  if (!tagged) {
    requireName(split?.image ?? path); // NAME_INVALID for the part that is no name
    return deleteImage(context, path);
  }
  if (isValidName(path) && gate.access?.principalMay(key, path, 'delete')) {
    try {
      return await deleteImage(context, path);
    } catch (error) {
      if (!(error instanceof RegistryError) || error.code !== 'NAME_UNKNOWN') throw error;
    }
  }
  await deleteTag(context, tagged);
}

const entries: Entry[] = [{ method: 'DELETE', handle: deleteImageOrTag }];

/** Registers /artifactory/<repoKey>/… on the app; each request is authorized through the gate. */
export function artifactoryRoutes(app: Hono<Env>, options: { live: () => { repositories: RepositorySet; trustedProxies: TrustedProxies }; auth: AuthService | null }): void {
  for (const entry of entries) {
    app.on(entry.method, '/artifactory/*', async (c) => {
      const { repositories, trustedProxies } = options.live();
      const gate = await openGate(c, options.auth, requestInfo(c, trustedProxies), null);
      const rest = decodePath(c.req.path).slice('/artifactory/'.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) throw new RegistryError('NAME_INVALID', { message: 'expected /artifactory/<repoKey>/<image>[/<tag>]' });
      const key = requireRepositoryKey(rest.slice(0, slash));
      const scope: Route = { repoKey: key, endpointPath: '', prefix: `/v2/${key}/`, namesIncludeKey: true };
      await entry.handle({ gate, scope, key, repositories, path: rest.slice(slash + 1).replace(/\/$/, '') });
      return new Response(null, { status: 204, headers: apiVersionHeader });
    });
  }
}
