import { RegistryError } from './errors.js';

// distribution-spec §"Pulling manifests": a repository name is
//   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
// and a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. Neither admits "..", an empty segment or a
// leading "/", so a valid name can never escape a directory.
const componentPattern = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Docker's limit on the whole name including the registry host (reference/normalize.go). */
export const maxNameLength = 255;

export function isValidName(name: string): boolean {
  if (name.length === 0 || name.length > maxNameLength) return false;
  return name.split('/').every((component) => componentPattern.test(component));
}

export function requireName(name: string): string {
  if (name.length > maxNameLength) {
    throw new RegistryError('NAME_INVALID', { message: `repository name is ${name.length} characters long; the limit is ${maxNameLength}`, detail: { length: name.length } });
  }
  if (!isValidName(name)) {
    throw new RegistryError('NAME_INVALID', { message: `invalid repository name ${JSON.stringify(name)}`, detail: { name } });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return tagPattern.test(tag);
}

/** `<image>/<tag>` split at its last slash (a tag has none); null when that segment is no tag. The image is not checked. */
export function splitTag(path: string): { image: string; tag: string } | null {
  const slash = path.lastIndexOf('/');
  const tag = path.slice(slash + 1);
  return slash > 0 && isValidTag(tag) ? { image: path.slice(0, slash), tag } : null;
}

/** Repository keys are Artifactory-style and must also be valid DNS labels (subdomain access). */
export const maxRepositoryKeyLength = 63;
const repositoryKeyPattern = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

export function isValidRepositoryKey(key: string): boolean {
  return key.length <= maxRepositoryKeyLength && repositoryKeyPattern.test(key);
}
