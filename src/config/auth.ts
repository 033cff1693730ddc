import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { boolean, describe, duration, join, list, mapping, positiveInteger, string } from './fields.js';

// Access control: `auth:` (how callers authenticate) and `permissions:` (Artifactory-style
// permission targets: which users, groups and anonymous callers may do what to which images).

/** Artifactory's actions, each including the ones before it (manage ⊃ delete ⊃ deploy ⊃ annotate ⊃ read). */
export const permissionActions = ['read', 'annotate', 'deploy', 'delete', 'manage'] as const;
export type Action = (typeof permissionActions)[number];

export interface AuthConfig {
  /** false: no authentication at all, everyone may do everything (a throw-away local setup). */
  readonly enabled: boolean;
  /** With enabled: false, allows listeners on non-loopback addresses (otherwise a config error). */
  readonly unsafeAllowNetwork: boolean;
  /** The Docker token `service` and JWT audience. */
  readonly service: string;
  /** Lifetime of the bearer tokens the token endpoint issues (ms). */
  readonly tokenLifetime: number;
  /** Lifetime of refresh tokens (docker login's offline_token), ms. */
  readonly refreshTokenLifetime: number;
  /** Failed logins allowed per user name and per client address within `window` before 429. */
  readonly throttle: { readonly perUser: number; readonly perAddress: number; readonly window: number };
}

export interface PermissionTarget {
  readonly name: string;
  /** Repository keys, or ["*"] for all. */
  readonly repositories: readonly string[];
  /** Ant-style patterns over image names (team/**); default ["**"]. */
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly users: Readonly<Record<string, readonly Action[]>>;
  readonly groups: Readonly<Record<string, readonly Action[]>>;
  readonly anonymous: readonly Action[];
}

/** Repository keys that would shadow the token endpoint (/v2/token) or the auth helper. */
export const reservedRepositoryKeys = ['token', 'auth'];

/** Loopback listeners only: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackAddress(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true;
  return isIP(address) === 4 && address.startsWith('127.');
}

function actions(value: unknown, path: string): Action[] {
  return list(value, path).map((item, i) => {
    if (!permissionActions.includes(item as Action)) {
      throw new ConfigError(join(path, i), `expected one of ${permissionActions.join(', ')}, got ${describe(item)}`);
    }
    return item as Action;
  });
}

function grants(value: unknown, path: string): Record<string, Action[]> {
  if (value === undefined) return {};
  const node = mapping(value, path, Object.keys(value ?? {}));
  return Object.fromEntries(Object.entries(node).map(([name, item]) => [name, actions(item, join(path, name))]));
}

function patterns(value: unknown, path: string, fallback: string[]): string[] {
  return value === undefined ? fallback : list(value, path).map((item, i) => string(item, join(path, i)));
}

function target(value: unknown, path: string, repositoryKeys: readonly string[]): PermissionTarget {
  const node = mapping(value, path, ['name', 'repositories', 'include', 'exclude', 'users', 'groups', 'anonymous']);
  const repositoriesPath = join(path, 'repositories');
  const repositories = list(node.repositories, repositoriesPath).map((item, i) => {
    const key = string(item, join(repositoriesPath, i));
    if (key !== '*' && !repositoryKeys.includes(key)) {
      throw new ConfigError(join(repositoriesPath, i), `no repository ${JSON.stringify(key)} (configured: ${repositoryKeys.join(', ')}; "*" means all)`);
    }
    return key;
  });
  return {
    name: string(node.name, join(path, 'name')),
    repositories,
    include: patterns(node.include, join(path, 'include'), ['**']),
    exclude: patterns(node.exclude, join(path, 'exclude'), []),
    users: grants(node.users, join(path, 'users')),
    groups: grants(node.groups, join(path, 'groups')),
    anonymous: node.anonymous === undefined ? [] : actions(node.anonymous, join(path, 'anonymous')),
  };
}

export function permissionsConfig(value: unknown, repositoryKeys: readonly string[]): PermissionTarget[] {
  if (value === undefined || value === null) return []; // `permissions:` with every entry commented out
  const targets = list(value, 'permissions').map((item, i) => target(item, join('permissions', i), repositoryKeys));
  const names = new Set<string>();
  targets.forEach((item, i) => {
    if (names.has(item.name)) throw new ConfigError(join(join('permissions', i), 'name'), `another permission target is already named ${JSON.stringify(item.name)}`);
    names.add(item.name);
  });
  return targets;
}

interface AuthContext {
  listenerAddresses: readonly string[];
  baseDomain: string | null;
}

export function authConfig(value: unknown, context: AuthContext): AuthConfig {
  const node = value === undefined ? {} : mapping(value, 'auth', ['enabled', 'unsafeAllowNetwork', 'service', 'tokenLifetime', 'refreshTokenLifetime', 'throttle']);
  const optional = <T>(key: string, read: (v: unknown, p: string) => T, fallback: T): T => (node[key] === undefined ? fallback : read(node[key], join('auth', key)));
  const throttle = node.throttle === undefined ? {} : mapping(node.throttle, 'auth.throttle', ['perUser', 'perAddress', 'window']);
  const throttleValue = <T>(key: string, read: (v: unknown, p: string) => T, fallback: T): T => (throttle[key] === undefined ? fallback : read(throttle[key], join('auth.throttle', key)));
  const enabled = optional('enabled', boolean, true);
  const unsafeAllowNetwork = optional('unsafeAllowNetwork', boolean, false);
  const exposed = context.listenerAddresses.find((address) => !isLoopbackAddress(address));
  if (!enabled && exposed !== undefined && !unsafeAllowNetwork) {
    throw new ConfigError('auth.enabled', `false gives everyone full access, and a listener is on ${exposed}, beyond loopback; keep auth on, or set auth.unsafeAllowNetwork: true as well if you really mean it`);
  }
  const tokenLifetime = optional('tokenLifetime', duration, 5 * 60_000);
  if (tokenLifetime < 1000) throw new ConfigError('auth.tokenLifetime', 'expected at least 1s');
  return {
    enabled,
    unsafeAllowNetwork,
    service: optional('service', string, context.baseDomain ?? 'wharf'),
    tokenLifetime,
    refreshTokenLifetime: optional('refreshTokenLifetime', duration, 7 * 86_400_000),
    throttle: {
      perUser: throttleValue('perUser', positiveInteger, 10),
      perAddress: throttleValue('perAddress', positiveInteger, 30),
      window: throttleValue('window', duration, 5 * 60_000),
    },
  };
}
