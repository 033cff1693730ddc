import { RegistryError } from '../oci/errors.js';
import type { Repository } from '../repos/repository.js';

/** The error for a write the repository's kind does not take, saying where to write instead. */
export function refuseWrite(repository: Repository, action: string): RegistryError {
  return new RegistryError('UNSUPPORTED', {
    message: `cannot ${action} ${repository.key}: it is a ${repository.kind} repository; push to a local repository, or to a virtual one with a default deployment repository`,
    detail: { repository: repository.key, kind: repository.kind },
  });
}
