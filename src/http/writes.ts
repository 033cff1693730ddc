import { RegistryError } from '../oci/errors.js';
import type { Repository } from '../repos/repository.js';

/** The error for a write the repository does not take, saying where to write instead. */
export function refuseWrite(repository: Repository, action: string): RegistryError {
  const detail = { repository: repository.key, kind: repository.kind };
  if (repository.kind === 'virtual') {
    // A virtual repository takes writes only through its default deployment repository.
    return new RegistryError('DENIED', {
      message: `cannot ${action} ${repository.key}: this virtual repository has no default deployment repository; ` +
        `set repositories.${repository.key}.defaultDeploymentRepo to one of its local members`,
      detail,
    });
  }
  return new RegistryError('UNSUPPORTED', {
    message: `cannot ${action} ${repository.key}: it is a ${repository.kind} repository; push to a local repository, or to a virtual one with a default deployment repository`,
    detail,
  });
}
