import { ConfigError } from './errors.js';
import { boolean, join, list, mapping, string } from './fields.js';
import type { RepositoryConfig, VirtualRepositoryConfig } from './types.js';

// Virtual repositories: the keys of one entry, then the checks that need every repository
// (members exist, no cycle, the deployment target is a local member).

export function virtualRepository(value: unknown, path: string): VirtualRepositoryConfig {
  const node = mapping(value, path, ['type', 'repositories', 'defaultDeploymentRepo', 'resolveDockerTagsByTimestamp']);
  const membersPath = join(path, 'repositories');
  const members = list(node.repositories ?? [], membersPath).map((item, i) => string(item, join(membersPath, i)));
  if (members.length === 0) throw new ConfigError(membersPath, 'a virtual repository needs at least one member, like [docker-local, docker-hub]');
  members.forEach((member, i) => {
    if (members.indexOf(member) !== i) throw new ConfigError(join(membersPath, i), `${member} is listed twice`);
  });
  return {
    type: 'virtual',
    repositories: members,
    defaultDeploymentRepo: node.defaultDeploymentRepo === undefined ? null : string(node.defaultDeploymentRepo, join(path, 'defaultDeploymentRepo')),
    resolveDockerTagsByTimestamp: node.resolveDockerTagsByTimestamp === undefined
      ? false
      : boolean(node.resolveDockerTagsByTimestamp, join(path, 'resolveDockerTagsByTimestamp')),
  };
}

/** Every key a repository reaches through its members, nested virtual repositories included. */
export function reachableMembers(key: string, repositories: Readonly<Record<string, RepositoryConfig>>): string[] {
  const seen: string[] = [];
  const visit = (current: string) => {
    const config = repositories[current];
    if (config?.type !== 'virtual') return;
    for (const member of config.repositories) {
      if (seen.includes(member)) continue;
      seen.push(member);
      visit(member);
    }
  };
  visit(key);
  return seen;
}

/** Throws a ConfigError naming the key for a missing member, a cycle or a bad deployment target. */
export function checkVirtualRepositories(repositories: Readonly<Record<string, RepositoryConfig>>): void {
  const keys = Object.keys(repositories);
  for (const [key, config] of Object.entries(repositories)) {
    if (config.type !== 'virtual') continue;
    const path = join('repositories', key);
    config.repositories.forEach((member, i) => {
      if (!repositories[member]) throw new ConfigError(join(join(path, 'repositories'), i), `no repository ${JSON.stringify(member)} (configured: ${keys.join(', ')})`);
    });
    const loop = cycleFrom(key, repositories, [key]);
    if (loop) throw new ConfigError(join(path, 'repositories'), `virtual repositories form a loop: ${loop.join(' → ')}`);
    const target = config.defaultDeploymentRepo;
    if (target === null) continue;
    const locals = reachableMembers(key, repositories).filter((member) => repositories[member]!.type === 'local');
    if (!locals.includes(target)) {
      throw new ConfigError(join(path, 'defaultDeploymentRepo'), `expected a local member of ${key} (${locals.join(', ') || 'it has none'}), got ${JSON.stringify(target)}`);
    }
  }
}

/** The path back to `trail[0]` through virtual members, if there is one. */
function cycleFrom(current: string, repositories: Readonly<Record<string, RepositoryConfig>>, trail: string[]): string[] | null {
  const config = repositories[current];
  if (config?.type !== 'virtual') return null;
  for (const member of config.repositories) {
    if (member === trail[0]) return [...trail, member];
    if (trail.includes(member)) continue; // a loop elsewhere: reported from its own key
    const found = cycleFrom(member, repositories, [...trail, member]);
    if (found) return found;
  }
  return null;
}
