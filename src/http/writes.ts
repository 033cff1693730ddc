import { RegistryError } from '../oci/errors.js';
import type { Target } from './target.js';

/** The error for a write the repository's kind does not take, saying which repositories take it. */
export function refuseWrite(target: Target, action: string): RegistryError {
  const { repository, repositories } = target;
  const writable = repositories.all().filter((other) => other.uploads).map((other) => other.key);
  const where = writable.length ? `push to a local repository (${writable.join(', ')})` : 'no repository here takes pushes: configure one with type: local';
  return new RegistryError('UNSUPPORTED', {
    message: `cannot ${action} ${repository.key}: it is a ${repository.kind} repository; ${where}`,
    detail: { repository: repository.key, kind: repository.kind },
  });
}
