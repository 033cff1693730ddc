import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Image } from './images.js';

// Docker's token flow as a client does it, for end-to-end tests of an authenticated Wharf.

export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface Challenge {
  realm: string;
  service: string;
  scope?: string;
  error?: string;
}

/** The Bearer challenge of a 401 (asserting there is one). */
export function challengeOf(response: Response): Challenge {
  const header = response.headers.get('www-authenticate') ?? '';
  assert.match(header, /^Bearer /, `a Bearer challenge, got ${JSON.stringify(header)}`);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])) as unknown as Challenge;
}

export interface TokenOptions {
  credentials?: { user: string; password: string };
  scopes?: string[];
  offline?: boolean;
}

/** GET <realm>?service=…&scope=…: the token endpoint's JSON answer (asserting 200). */
export async function fetchToken(realm: string, service: string, options: TokenOptions = {}): Promise<{ token: string; refresh_token?: string; expires_in: number }> {
  const url = new URL(realm);
  url.searchParams.set('service', service);
  for (const scope of options.scopes ?? []) url.searchParams.append('scope', scope);
  if (options.offline) url.searchParams.set('offline_token', 'true');
  const headers: Record<string, string> = options.credentials ? { authorization: basic(options.credentials.user, options.credentials.password) } : {};
  const response = await fetch(url, { headers });
  assert.equal(response.status, 200, `token endpoint: ${await response.clone().text()}`);
  return response.json() as Promise<{ token: string; refresh_token?: string; expires_in: number }>;
}

/** The access a JWT carries (its payload, unverified). */
export function accessOf(token: string): { type: string; name: string; actions: string[] }[] {
  return (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: { type: string; name: string; actions: string[] }[] }).access;
}

export type Fetch = (path: string, init?: { method?: string; body?: Buffer<ArrayBuffer>; headers?: Record<string, string> }) => Promise<Response>;

/**
 * A registry client on `base` that answers each Bearer challenge as Docker does: a token for the
 * challenge's scope (Basic to the realm when credentials are given), then the request again.
 */
export function dockerClient(base: string, credentials?: { user: string; password: string }): Fetch {
  return async (path, init = {}) => {
    const first = await fetch(`${base}${path}`, init);
    if (first.status !== 401) return first;
    const challenge = challengeOf(first);
    await first.arrayBuffer();
    const { token } = await fetchToken(challenge.realm, challenge.service, { ...(credentials ? { credentials } : {}), scopes: challenge.scope ? [challenge.scope] : [] });
    return fetch(`${base}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
  };
}

/** Pushes an image with `client` (monolithic blob uploads, then the manifest); returns the manifest PUT's response. */
export async function pushWith(client: Fetch, name: string, image: Image, tag: string): Promise<Response> {
  for (const item of [image.config, ...image.layers]) {
    const response = await client(`/v2/${name}/blobs/uploads/?digest=${item.digest}`, { method: 'POST', body: item.bytes });
    if (response.status !== 201) return response;
  }
  return client(`/v2/${name}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST } });
}

/**
 * Polls `check` until it returns true, for a state no event announces (a CLI change to the
 * accounts has one: TestServer.accountsLoaded); fails after `ms` (default: room for a CI machine
 * several times slower than this one).
 */
export async function eventually(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(100);
  }
}

/**
 * `count` logins sent at once, each held once its attempt is counted (`reserved`, the login hook)
 * until every one has been held or refused (429); then all go on. `send(i)` sends the i-th; the
 * result is their statuses, and `hashed` how many were held (reached the password hash). Fails
 * after `ms` if some login was neither.
 */
export function heldLogins(count: number) {
  let settled = 0;
  let allSettled!: () => void;
  const all = new Promise<void>((resolve) => { allSettled = resolve; });
  const settle = () => { if (++settled === count) allSettled(); };
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const gate = {
    hashed: 0,
    reserved: async () => { gate.hashed++; settle(); await released; },
    async send(login: (i: number) => Promise<Response>, ms = 20_000): Promise<number[]> {
      const pending = Array.from({ length: count }, async (_, i) => {
        const response = await login(i);
        if (response.status === 429) settle();
        return response.status;
      });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`only ${settled} of ${count} logins were counted or refused`)), ms); });
      try {
        await Promise.race([all, late]);
      } finally {
        clearTimeout(timer);
        release();
      }
      return Promise.all(pending);
    },
  };
  return gate;
}
