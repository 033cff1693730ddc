import type { Config } from '../config/types.js';
import { accessFor } from './access.js';
import { mirrorLines } from './mirrors.js';

// "Set Me Up": the commands that reach one repository, for the access method the config gives it
// (setup/access.ts), like Artifactory's dialog; for a remote repository, how to use it as a mirror.

const unreachable = 'no listener reaches it';

export interface SetupOptions {
  /** Whether the server asks clients to log in (default true: the login lines are printed). */
  authentication?: boolean;
  /** Whether the reader may see where a remote repository fetches from (admins; default true). */
  showUpstream?: boolean;
}

export function setupText(config: Config, key: string, caPath: string | null, options: SetupOptions = {}): string | null {
  if (!config.repositories[key]) return null;
  const access = accessFor(config, key);
  if (!access) {
    return `Set Me Up: ${key} (${config.repositories[key]!.type} repository): ${unreachable}. Add a port binding (a listener with repository: ${key}), `
      + 'or a listener with neither repository nor mirrors, which serves every repository by path.\n';
  }
  const login = options.authentication ?? true;
  const repository = config.repositories[key]!;
  const kind = repository.type;
  const { registry, prefix } = access;
  const image = `${prefix}/team/app:1.0`;
  const pushes = kind === 'local' || (kind === 'virtual' && repository.defaultDeploymentRepo !== null);
  const plain = access.listener.tls === 'none';
  // podman and skopeo refuse plain HTTP unless told, even on loopback.
  const podman = (command: string) => `  podman ${command}${plain ? ' --tls-verify=false' : ''}`;
  const lines = [
    `Set Me Up: ${key} (${kind} repository, by ${access.method})`,
    '',
    'docker:',
    ...(login ? [`  docker login ${registry}`] : []),
    ...(pushes ? [`  docker tag app:1.0 ${image}`, `  docker push ${image}`] : []),
    `  docker pull ${image}`,
    '',
    'podman:',
    ...(login ? [`${podman('login')} ${registry}`] : []),
    ...(pushes ? [`  podman tag app:1.0 ${image}`, `${podman('push')} ${image}`] : []),
    `${podman('pull')} ${image}`,
  ];
  if (login) {
    lines.push('', '~/.docker/config.json (what docker login writes; auth is base64 of user:password):', `  { "auths": { "${registry}": { "auth": "<base64 of user:password>" } } }`);
  } else {
    lines.push('', 'No login needed: this server does not ask for credentials.');
  }
  if (!pushes) lines.push('', `${key} is a ${kind} repository: pull only; push to a local repository.`);
  if (access.listener.tls === 'self-signed' && caPath) {
    lines.push(
      '',
      "Trust Wharf's CA first (its certificate is self-signed):",
      `  docker: sudo mkdir -p /etc/docker/certs.d/${registry} && sudo cp ${caPath} /etc/docker/certs.d/${registry}/ca.crt`,
      `  podman: sudo mkdir -p /etc/containers/certs.d/${registry} && sudo cp ${caPath} /etc/containers/certs.d/${registry}/ca.crt`,
    );
  } else if (plain) {
    lines.push('', `This listener is plain HTTP: docker accepts that on 127.0.0.0/8 only; elsewhere add "${registry}" to insecure-registries, or use a TLS listener.`);
  }
  lines.push(...mirrorLines(config, key, caPath, { showUpstream: options.showUpstream ?? true }));
  return `${lines.join('\n')}\n`;
}

/** What `wharf setup` prints without a repository: each key, its kind and how images are named. */
export function repositoryList(config: Config): string {
  const keys = Object.keys(config.repositories);
  const width = Math.max(...keys.map((key) => key.length));
  const typeWidth = Math.max(...keys.map((key) => config.repositories[key]!.type.length));
  const lines = keys.map((key) => {
    const access = accessFor(config, key);
    const reach = access ? `${access.prefix}/<image>  (by ${access.method})` : unreachable;
    return `  ${key.padEnd(width)}  ${config.repositories[key]!.type.padEnd(typeWidth)}  ${reach}`;
  });
  return `Repositories (wharf setup REPOSITORY prints the commands for one):\n${lines.join('\n')}\n`;
}
