import type { AuthService, Credentials } from '../auth/service.js';

// The Authorization header, parsed: Basic user:password, a Bearer token, nothing, or something
// malformed (which is refused, never taken for anonymous).

export type SentCredentials =
  | { kind: 'none' }
  | ({ kind: 'basic' } & Credentials)
  | { kind: 'bearer'; token: string }
  | { kind: 'malformed'; reason: string };

const maxHeaderLength = 8192;

export function parseAuthorization(header: string | undefined): SentCredentials {
  if (header === undefined || header === '') return { kind: 'none' };
  if (header.length > maxHeaderLength) return { kind: 'malformed', reason: 'the Authorization header is too long' };
  const match = /^([A-Za-z]+) +([A-Za-z0-9._~+/=-]+)$/.exec(header.trim());
  if (!match) return { kind: 'malformed', reason: 'expected "Bearer <token>" or "Basic <base64 user:password>"' };
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'bearer') return { kind: 'bearer', token: match[2]! };
  if (scheme !== 'basic') return { kind: 'malformed', reason: `unsupported authorization scheme ${match[1]}` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(match[2]!)) return { kind: 'malformed', reason: 'Basic credentials are not base64' };
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1 || decoded.includes('\u0000') || decoded.includes('\ufffd')) return { kind: 'malformed', reason: 'Basic credentials must be user:password' };
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The Authorization header as authentication reads it: an access token sent as Bearer is the Basic credentials it stands for (AuthService.bearerAsBasic). */
export function sentCredentials(header: string | undefined, auth: AuthService): SentCredentials {
  const sent = parseAuthorization(header);
  const basic = sent.kind === 'bearer' ? auth.bearerAsBasic(sent.token) : null;
  return basic ? { kind: 'basic', ...basic } : sent;
}
