import type { Access } from '../auth/access.js';
import type { Action } from '../auth/actions.js';
import { anonymous } from '../auth/principal.js';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import type { RepositorySet } from '../repos/set.js';
import { sentCredentials } from './credentials.js';
import { unknownRepository } from './dispatch.js';
import type { Ctx } from './env.js';
import type { Gate } from './gate.js';
import { openGate, type RequestInfo } from './request.js';
import { readLimited, requestBody } from './streams.js';

// Who calls a management API route (/api/…, outside the registry protocol) and what they may
// do. These routes take Basic credentials (a password, or an access token as the password), an
// access token as a bearer credential (wharf_…), or nothing (anonymous, with what anonymous may
// do). A registry bearer JWT is refused: its `access` claim lists registry scopes only, so it
// says nothing about the management API; the client is told to send Basic credentials or an
// access token instead. Refusals: an anonymous caller gets 401 with a Basic challenge (curl and
// scripts answer it with -u), an authenticated one 403 DENIED.

function basicChallenge(auth: AuthService, message: string): RegistryError {
  return new RegistryError('UNAUTHORIZED', { message, headers: { 'WWW-Authenticate': `Basic realm="${auth.config.service}"` } });
}

export class ApiCaller {
  readonly access: Access;
  readonly #gate: Gate;
  readonly #auth: AuthService | null;

  constructor(access: Access, gate: Gate, auth: AuthService | null) {
    this.access = access;
    this.#gate = gate;
    this.#auth = auth;
  }

  get anonymous(): boolean {
    return this.#auth !== null && this.access.principal.kind === 'anonymous';
  }

  may(repoKey: string, image: string, action: Action): boolean {
    return this.access.principalMay(repoKey, image, action);
  }

  /** Throws (401 for anonymous callers, 403 for others) unless the caller may do `action`; `why` ends the message. */
  require(repoKey: string, image: string, action: Action, why = ''): void {
    if (this.may(repoKey, image, action)) return;
    this.audit({ action, target: `${repoKey}/${image}`, result: 'denied' });
    if (this.anonymous) throw basicChallenge(this.#auth!, `authentication required to ${action} ${repoKey}/${image}: send Basic credentials or an access token`);
    throw new RegistryError('DENIED', { message: `${this.access.who} may not ${action} ${repoKey}/${image}${why}`, detail: { repository: repoKey, image, action } });
  }

  /** The repository, if it exists and the caller may see it; else NAME_UNKNOWN naming only keys they may read (401 first for anonymous callers). */
  visible(key: string, repositories: RepositorySet, alsoVisibleIf: () => boolean = () => false): void {
    if (repositories.find(key) && (this.access.readsSomething(key) || alsoVisibleIf())) return;
    if (this.anonymous) throw basicChallenge(this.#auth!, 'authentication required: send Basic credentials or an access token');
    throw unknownRepository(key, repositories, this.#gate);
  }

  audit(event: { action: string; target: string; result: 'ok' | 'denied' }): void {
    this.#gate.audit(event);
  }
}

/** Authenticates a management API request (401 with a Basic challenge for credentials that are not good). */
export async function apiCaller(c: Ctx, auth: AuthService | null, info: RequestInfo): Promise<ApiCaller> {
  // A bearer credential that is not an access token (sentCredentials makes those Basic) is a registry JWT.
  if (auth && sentCredentials(c.req.header('authorization'), auth).kind === 'bearer') {
    throw basicChallenge(auth, 'the management API takes Basic credentials or an access token (wharf_…), not a registry bearer token (its scopes cover registry requests only)');
  }
  let gate: Gate;
  try {
    gate = await openGate(c, auth, info, null);
  } catch (error) {
    if (auth && error instanceof RegistryError && error.code === 'UNAUTHORIZED') throw basicChallenge(auth, error.message);
    throw error;
  }
  return new ApiCaller(gate.access ?? auth!.access(anonymous, null), gate, auth);
}

/** The JSON body of a request (REQUEST_INVALID when it is not a JSON object), at most `limit` bytes. */
export async function jsonBody(c: Ctx, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const tooLarge = () => new RegistryError('REQUEST_INVALID', { status: 413, message: `the request body is over ${limit} bytes` });
  if (Number(c.req.header('content-length') ?? 0) > limit) throw tooLarge();
  const bytes = await readLimited(requestBody(c), limit, tooLarge);
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('REQUEST_INVALID', { message: 'the request body is not valid JSON' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RegistryError('REQUEST_INVALID', { message: 'the request body must be a JSON object' });
  return body as Record<string, unknown>;
}
