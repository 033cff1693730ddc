import { RegistryError } from '../oci/errors.js';

// The 401 that starts Docker's token flow (distribution's docs/spec/auth/token.md):
//   WWW-Authenticate: Bearer realm="https://host/v2/token",service="wharf",scope="repository:docker-local/team/app:pull"
// with RFC 6750's error="invalid_token" when the credentials sent were not good, and
// error="insufficient_scope" when the token lacks an action the caller could get.

export interface ChallengeOptions {
  realm: string;
  service: string;
  /** The scope the request needs, as the client names it. */
  scope?: string;
  error?: 'invalid_token' | 'insufficient_scope';
  message?: string;
}

const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

export function challenge(options: ChallengeOptions): RegistryError {
  const params = [`realm=${quote(options.realm)}`, `service=${quote(options.service)}`];
  if (options.scope) params.push(`scope=${quote(options.scope)}`);
  if (options.error) params.push(`error=${quote(options.error)}`);
  return new RegistryError('UNAUTHORIZED', {
    message: options.message ?? 'authentication required: log in (docker login) or ask the token endpoint for a token',
    headers: { 'WWW-Authenticate': `Bearer ${params.join(',')}` },
  });
}
