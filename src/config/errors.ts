/** A configuration problem, always naming the key path: `repositories.docker-hub.url: …`. */
export class ConfigError extends Error {
  readonly path: string;

  constructor(path: string, problem: string) {
    super(`${path || '(top level)'}: ${problem}`);
    this.name = 'ConfigError';
    this.path = path;
  }
}
