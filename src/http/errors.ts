import type { Logger } from '../log/logger.js';
import { RegistryError } from '../oci/errors.js';
import { apiVersionHeader, type Ctx } from './env.js';

/** The one place that renders errors: the spec's JSON envelope with the code's status. */
export function renderError(error: RegistryError): Response {
  return new Response(JSON.stringify(error.toJSON()), {
    status: error.status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...apiVersionHeader, ...error.headers },
  });
}

/** The client went away before its request was whole (a cancelled push): not our failure. */
function clientAborted(c: Ctx): boolean {
  const incoming = c.env.incoming;
  // HTTP/2 calls a request the client reset complete; `aborted` says what happened.
  return incoming.aborted || (!incoming.complete && (incoming.destroyed || incoming.readableAborted));
}

/**
 * Renders what a handler threw. Registry errors are the client's answer; an aborted request is
 * logged as such; anything else is an internal error, logged with its cause and stack.
 */
export function errorResponse(error: unknown, c: Ctx, logger: Logger): Response {
  if (error instanceof RegistryError) return renderError(error);
  const request = `${c.req.method} ${c.req.path}`;
  if (clientAborted(c)) {
    logger.info(`${request}: the client closed the connection before the request was complete`);
    return renderError(new RegistryError('UNKNOWN', { status: 400, message: 'the request was aborted' }));
  }
  const cause = error instanceof Error ? error.message : String(error);
  logger.error(`internal error on ${request}: ${cause}`, { stack: error instanceof Error ? error.stack : undefined });
  return renderError(new RegistryError('UNKNOWN', { status: 500, message: 'internal error; the server log has the details' }));
}
