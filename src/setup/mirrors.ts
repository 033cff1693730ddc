import type { Config, RemoteRepositoryConfig } from '../config/types.js';
import { accessFor, listenerAddress, type Access } from './access.js';

// Set Me Up for a remote repository used as a mirror: Docker's daemon.json registry-mirrors
// (Docker mirrors Docker Hub only, and takes no path), containerd's hosts.toml for the upstream it
// mirrors, and podman's registries.conf [[registry.mirror]] block.

const dockerHubHosts = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com']);

/** The registry name clients use for what the remote mirrors: docker.io for Docker Hub, else its host. */
function upstreamName(config: RemoteRepositoryConfig): string {
  const url = new URL(config.url);
  return dockerHubHosts.has(url.hostname) ? 'docker.io' : url.host;
}

/** Where containerd's `server` line points: the real upstream, tried when the mirror fails. */
function serverOf(upstream: string, config: RemoteRepositoryConfig): string {
  return upstream === 'docker.io' ? 'https://registry-1.docker.io' : new URL(config.url).origin;
}

interface MirrorEndpoint {
  /** scheme://host:port, plus /v2/<key> with override_path for the repository-path method. */
  url: string;
  overridePath: boolean;
  secure: boolean;
  selfSigned: boolean;
}

/** The endpoint that mirrors `upstream` for `key`: a mirror listener mapping it, else how `key` is reached. */
function endpointFor(config: Config, key: string, upstream: string, access: Access): MirrorEndpoint {
  const mirror = config.listeners.find((listener) => listener.mirrors?.[upstream] === key);
  const listener = mirror ?? access.listener;
  const scheme = listener.tls === 'none' ? 'http' : 'https';
  const host = mirror ? listenerAddress(mirror, config) : access.registry;
  const overridePath = !mirror && access.method === 'repository path';
  return { url: `${scheme}://${host}${overridePath ? `/v2/${key}` : ''}`, overridePath, secure: scheme === 'https', selfSigned: listener.tls === 'self-signed' };
}

/** The placeholder for the upstream where the caller may not see it (only admins see configuration). */
const hiddenUpstream = '<upstream>';

/** `showUpstream`: name the upstream registry (admins); otherwise the snippets say <upstream>. */
export function mirrorLines(config: Config, key: string, caPath: string | null, options: { showUpstream: boolean }): string[] {
  const repository = config.repositories[key];
  const access = accessFor(config, key);
  if (repository?.type !== 'remote' || !access) return [];
  const mirrored = upstreamName(repository);
  // A mirror listener is found by the upstream it maps, before the name is hidden.
  const endpoint = endpointFor(config, key, mirrored, access);
  const upstream = options.showUpstream ? mirrored : hiddenUpstream;
  const certs = `/etc/containerd/certs.d/${upstream}`;
  const lines = ['', options.showUpstream ? `As a mirror of ${upstream}:` : `As a mirror of its upstream (${upstream} below: an administrator can tell you which registry it mirrors):`];
  if (upstream === 'docker.io' && !endpoint.overridePath) {
    lines.push(
      '  docker, /etc/docker/daemon.json (then restart dockerd):',
      `    ${JSON.stringify({ 'registry-mirrors': [endpoint.url], ...(endpoint.secure ? {} : { 'insecure-registries': [new URL(endpoint.url).host] }) })}`,
    );
  }
  lines.push(
    `  containerd, ${certs}/hosts.toml (config_path = "/etc/containerd/certs.d" in containerd's CRI registry settings):`,
    `    server = "${options.showUpstream ? serverOf(upstream, repository) : `https://${upstream}`}"`,
    '',
    `    [host."${endpoint.url}"]`,
    '      capabilities = ["pull", "resolve"]',
    ...(endpoint.overridePath ? ['      override_path = true'] : []),
    ...(endpoint.selfSigned && caPath ? [`      ca = "${certs}/wharf-ca.crt"    # a copy of ${caPath}`] : []),
    '  podman and other containers/image tools, /etc/containers/registries.conf:',
    '    [[registry]]',
    `    prefix = "${upstream}"`,
    `    location = "${upstream}"`,
    '',
    '    [[registry.mirror]]',
    `    location = "${access.prefix}"`,
    ...(access.listener.tls === 'none' ? ['    insecure = true'] : []),
  );
  return lines;
}
