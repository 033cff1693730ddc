import { hostname } from 'node:os';
import type { Config, ListenerConfig } from '../config/types.js';

// "Set Me Up": the commands that reach one repository, for the access method the config gives it
// (a port binding first, then a subdomain, then the repository path), like Artifactory's dialog.

interface Access {
  /** What docker login takes: host[:port]. */
  registry: string;
  /** What image names start with: registry, or registry/<key> for the path method. */
  prefix: string;
  method: 'port binding' | 'subdomain' | 'repository path';
  listener: ListenerConfig;
}

function hostOf(listener: ListenerConfig, config: Config): string {
  if (listener.address === '0.0.0.0' || listener.address === '::') return config.baseDomain ?? hostname();
  return listener.address.includes(':') ? `[${listener.address}]` : listener.address;
}

function withPort(host: string, listener: ListenerConfig): string {
  const defaultPort = listener.tls === 'none' ? 80 : 443;
  return listener.port === defaultPort ? host : `${host}:${listener.port}`;
}

/** How clients reach `key`, or null when it is not a configured repository. */
function accessFor(config: Config, key: string): Access | null {
  if (!config.repositories[key]) return null;
  const bound = config.listeners.find((listener) => listener.repository === key);
  if (bound) {
    const registry = withPort(hostOf(bound, config), bound);
    return { registry, prefix: registry, method: 'port binding', listener: bound };
  }
  const shared = config.listeners.find((listener) => listener.repository === null) ?? config.listeners[0]!;
  if (config.baseDomain && shared.tls !== 'none') {
    const registry = withPort(`${key}.${config.baseDomain}`, shared);
    return { registry, prefix: registry, method: 'subdomain', listener: shared };
  }
  const registry = withPort(hostOf(shared, config), shared);
  return { registry, prefix: `${registry}/${key}`, method: 'repository path', listener: shared };
}

export function setupText(config: Config, key: string, caPath: string | null): string | null {
  const access = accessFor(config, key);
  if (!access) return null;
  const kind = config.repositories[key]!.type;
  const { registry, prefix } = access;
  const image = `${prefix}/team/app:1.0`;
  const pushes = kind === 'local';
  const lines = [
    `Set Me Up: ${key} (${kind} repository, by ${access.method})`,
    '',
    'docker:',
    `  docker login ${registry}`,
    ...(pushes ? [`  docker tag app:1.0 ${image}`, `  docker push ${image}`] : []),
    `  docker pull ${image}`,
    '',
    'podman:',
    `  podman login ${registry}`,
    ...(pushes ? [`  podman tag app:1.0 ${image}`, `  podman push ${image}`] : []),
    `  podman pull ${image}`,
    '',
    '~/.docker/config.json (what docker login writes; auth is base64 of user:password):',
    `  { "auths": { "${registry}": { "auth": "<base64 of user:password>" } } }`,
  ];
  if (!pushes) lines.push('', `${key} is a ${kind} repository: pull only; push to a local repository.`);
  if (access.listener.tls === 'self-signed' && caPath) {
    lines.push(
      '',
      "Trust Wharf's CA first (its certificate is self-signed):",
      `  docker: sudo mkdir -p /etc/docker/certs.d/${registry} && sudo cp ${caPath} /etc/docker/certs.d/${registry}/ca.crt`,
      `  podman: sudo mkdir -p /etc/containers/certs.d/${registry} && sudo cp ${caPath} /etc/containers/certs.d/${registry}/ca.crt`,
    );
  } else if (access.listener.tls === 'none') {
    lines.push('', `This listener is plain HTTP: docker accepts that on 127.0.0.0/8 only; elsewhere add "${registry}" to insecure-registries, or use a TLS listener.`);
  }
  return `${lines.join('\n')}\n`;
}

/** What `wharf setup` prints without a repository: each key, its kind and how images are named. */
export function repositoryList(config: Config): string {
  const keys = Object.keys(config.repositories);
  const width = Math.max(...keys.map((key) => key.length));
  const lines = keys.map((key) => {
    const access = accessFor(config, key)!;
    return `  ${key.padEnd(width)}  ${config.repositories[key]!.type.padEnd(6)}  ${access.prefix}/<image>  (by ${access.method})`;
  });
  return `Repositories (wharf setup REPOSITORY prints the commands for one):\n${lines.join('\n')}\n`;
}
