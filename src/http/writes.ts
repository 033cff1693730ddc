import { RegistryError } from '../oci/errors.js';
import { parseEndpoint } from '../oci/paths.js';
import type { Target } from './target.js';

/**
 * What the repository takes on the refused request's path, for the 405's Allow (RFC 9110 §15.5.6;
 * empty: nothing, as an upload session on a repository without uploads).
 */
function allowed(target: Target): string[] {
  const { repository, route } = target;
  switch (parseEndpoint(route.endpointPath).kind) {
    case 'manifest': return ['GET', 'HEAD', ...(repository.putManifest ? ['PUT'] : []), ...(repository.deleteManifest ? ['DELETE'] : [])];
    case 'blob': return ['GET', 'HEAD', ...(repository.deleteBlob ? ['DELETE'] : [])];
    default: return [];
  }
}

/**
 * The error for a write the repository does not take, saying where to write instead: among the
 * repositories the caller may read in, so the answer names no key they could not learn otherwise.
 */
export function refuseWrite(target: Target, action: string): RegistryError {
  const { repository, repositories, access } = target;
  const detail = { repository: repository.key, kind: repository.kind };
  if (repository.kind === 'virtual') {
    // A virtual repository takes writes only through its default deployment repository.
    return new RegistryError('DENIED', {
      message: `cannot ${action} ${repository.key}: this virtual repository has no default deployment repository; ` +
        `set repositories.${repository.key}.defaultDeploymentRepo to one of its local members`,
      detail,
    });
  }
  const keys = (kind: string) => repositories.all()
    .filter((other) => other.kind === kind && (other.uploads || other.deployment) && access.readsSomething(other.key))
    .map((other) => other.key);
  const [locals, virtuals] = [keys('local'), keys('virtual')];
  const where = locals.length === 0
    ? (access.admin ? 'no repository here takes pushes: configure one with type: local' : 'push to a local repository you may write to')
    : `push to a local repository (${locals.join(', ')})${virtuals.length ? ` or a virtual one that deploys to one (${virtuals.join(', ')})` : ''}`;
  return new RegistryError('UNSUPPORTED', {
    message: `cannot ${action} ${repository.key}: it is a ${repository.kind} repository; ${where}`,
    detail,
    headers: { Allow: allowed(target).join(', ') },
  });
}
