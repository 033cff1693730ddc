import { RegistryError } from '../oci/errors.js';
import type { Target } from './target.js';

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
  });
}
