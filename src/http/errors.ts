import { RegistryError } from '../oci/errors.js';
import { apiVersionHeader } from './env.js';

/** The one place that renders errors: the spec's JSON envelope with the code's status. */
export function errorResponse(error: unknown): Response {
  const registryError = error instanceof RegistryError
    ? error
    : new RegistryError('UNKNOWN', { status: 500, message: 'internal error; the server log has the details' });
  if (!(error instanceof RegistryError)) console.error('wharf: internal error:', error);
  return new Response(JSON.stringify(registryError.toJSON()), {
    status: registryError.status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...apiVersionHeader, ...registryError.headers },
  });
}
