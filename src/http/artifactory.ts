import type { Hono } from 'hono';
import { RegistryError } from '../oci/errors.js';
import { isValidTag, requireName } from '../oci/names.js';
import type { Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { apiVersionHeader, type Env } from './env.js';
import { refuseWrite } from './writes.js';

// Artifactory's "Delete Item" for Docker repositories, where an image is a folder and each tag a
// folder inside it:
//   DELETE /artifactory/<repoKey>/<image>         the whole image: tags, manifests, blob links
//   DELETE /artifactory/<repoKey>/<image>/<tag>   one tag (its manifest goes at the next
//                                                  collection if nothing else keeps it)
// A path that names an image is the image; otherwise its last segment is a tag of the image
// before it. 204 on success, as Artifactory answers. Layers no longer used disappear at the next
// garbage collection; an image left without manifests leaves the catalog.

type Action = 'delete';

interface Route {
  method: 'DELETE';
  /** What the caller must be allowed to do to the repository (authorization joins here). */
  action: Action;
  handle: (repository: Repository, path: string) => Promise<void>;
}

async function deleteImageOrTag(repository: Repository, path: string): Promise<void> {
  if (!repository.deleteImage || !repository.deleteManifest) throw refuseWrite(repository, 'delete images from');
  const name = requireName(path);
  try {
    return await repository.deleteImage(name);
  } catch (error) {
    const slash = name.lastIndexOf('/');
    const tag = name.slice(slash + 1);
    if (!(error instanceof RegistryError) || error.code !== 'NAME_UNKNOWN' || slash < 0 || !isValidTag(tag)) throw error;
    await repository.deleteManifest(name.slice(0, slash), tag).catch((notTag: unknown) => {
      throw notTag instanceof RegistryError && notTag.code === 'MANIFEST_UNKNOWN'
        ? new RegistryError('NAME_UNKNOWN', { message: `no image ${name} and no tag ${tag} of ${name.slice(0, slash)} in ${repository.key}`, detail: { path } })
        : notTag;
    });
  }
}

const routes: Route[] = [{ method: 'DELETE', action: 'delete', handle: deleteImageOrTag }];

/** Registers /artifactory/<repoKey>/… on the app. */
export function artifactoryRoutes(app: Hono<Env>, repositories: RepositorySet): void {
  for (const route of routes) {
    app.on(route.method, '/artifactory/*', async (c) => {
      let rest: string;
      try {
        rest = decodeURIComponent(c.req.path.slice('/artifactory/'.length));
      } catch {
        throw new RegistryError('NAME_INVALID', { message: 'the request path is not valid percent-encoding' });
      }
      const slash = rest.indexOf('/');
      if (slash <= 0) throw new RegistryError('NAME_INVALID', { message: 'expected /artifactory/<repoKey>/<image>[/<tag>]' });
      await route.handle(repositories.get(rest.slice(0, slash)), rest.slice(slash + 1).replace(/\/$/, ''));
      return new Response(null, { status: 204, headers: apiVersionHeader });
    });
  }
}
