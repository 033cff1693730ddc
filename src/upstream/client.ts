import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { RegistryError } from '../oci/errors.js';
import { parseChallenge, type Challenge } from './challenge.js';
import { shownUrl } from './shown.js';
import { TokenCache, type TokenRequest, type TokenStore } from './tokens.js';

export interface UpstreamOptions {
  /** Base URL; requests go to <url>/v2/…. */
  url: string;
  username: string | null;
  password: string | null;
  timeouts: { connect: number; response: number };
  /** Told about every answer with a ratelimit-remaining header (Docker Hub). */
  onRateLimit?: (remaining: number) => void;
  /** Where bearer tokens are cached (default: this process's). */
  tokens?: TokenStore;
}

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  /** Path below the base URL, starting with /v2/. */
  path: string;
  /** Docker token scope, e.g. repository:library/alpine:pull. */
  scope: string;
  headers?: Record<string, string>;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The host that answered: the upstream's, or the one it redirected to (its CDN). */
  from: string;
}

export const redirectStatuses = new Set([301, 302, 303, 307, 308]);
export const maxRedirects = 5;
/** Bounded retries with backoff, on connection errors and 5xx only (never on 4xx). */
const retryDelaysMs = [100, 400];

/** Which of timeouts.* cut a request (undici's error codes), if one did. */
function timeoutOf(error: unknown): 'connect' | 'response' | null {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect';
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'response' : null;
}

export function header(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A client of one upstream registry: keep-alive connection pool, Bearer token flow (with a token
 * cache) and Basic auth as the upstream asks, redirects followed without credentials to other
 * hosts (Docker Hub's CDN), bounded retries. It returns the upstream's answer as it is; callers
 * decide what a status means.
 */
export class UpstreamClient {
  readonly url: string;
  readonly #options: UpstreamOptions;
  readonly #origin: string;
  readonly #agent: Agent;
  readonly #tokens: TokenCache;
  /** What the upstream asked for the last time it challenged us. */
  #bearer: { realm: string; service: string | undefined } | null = null;
  #basic = false;

  constructor(options: UpstreamOptions) {
    this.#options = options;
    this.url = options.url;
    this.#origin = new URL(options.url).origin;
    this.#agent = new Agent({
      connect: { timeout: options.timeouts.connect },
      headersTimeout: options.timeouts.response,
      bodyTimeout: options.timeouts.response,
      keepAliveTimeout: 30_000,
    });
    this.#tokens = new TokenCache({ dispatcher: this.#agent, ...(options.tokens ? { store: options.tokens } : {}) });
  }

  get #credentials(): string | null {
    const { username, password } = this.#options;
    return username !== null && password !== null ? `${username}:${password}` : null;
  }

  #tokenRequest(scope: string): TokenRequest | null {
    return this.#bearer ? { ...this.#bearer, scope, credentials: this.#credentials } : null;
  }

  async #authorization(scope: string): Promise<string | null> {
    const tokenRequest = this.#tokenRequest(scope);
    if (tokenRequest) {
      try {
        return `Bearer ${await this.#tokens.get(tokenRequest)}`;
      } catch (error) {
        // Mapped here, to a RegistryError, so send() does not retry it: a pull waits for the realm once.
        throw this.#unreachable(error, `the token endpoint ${shownUrl(tokenRequest.realm)} of upstream ${this.url}`);
      }
    }
    const credentials = this.#credentials;
    return this.#basic && credentials ? `Basic ${Buffer.from(credentials).toString('base64')}` : null;
  }

  /** Sends a request, answering one auth challenge and following redirects; retries connection errors (not timeouts) and 5xx. */
  async send(upstreamRequest: UpstreamRequest): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      let response: Dispatcher.ResponseData;
      let from: string;
      try {
        ({ response, from } = await this.#sendAuthorized(upstreamRequest));
      } catch (error) {
        // A timeout is not tried again: the client has already waited its whole limit once.
        if (error instanceof RegistryError || timeoutOf(error) || attempt >= retryDelaysMs.length) throw this.#unreachable(error);
        await sleep(retryDelaysMs[attempt]!);
        continue;
      }
      if (response.statusCode >= 500 && attempt < retryDelaysMs.length) {
        response.body.resume();
        await sleep(retryDelaysMs[attempt]!);
        continue;
      }
      const remaining = header(response, 'ratelimit-remaining');
      if (remaining !== undefined) this.#options.onRateLimit?.(Number.parseInt(remaining, 10));
      return { status: response.statusCode, headers: response.headers, body: response.body, from };
    }
  }

  async #sendAuthorized(upstreamRequest: UpstreamRequest): Promise<{ response: Dispatcher.ResponseData; from: string }> {
    const first = await this.#follow(upstreamRequest, await this.#authorization(upstreamRequest.scope));
    const { response, own } = first;
    // Only the upstream's own challenge is taken up: a host it redirected to could name any realm,
    // and the configured credentials go to the realm.
    if (response.statusCode !== 401 || !own || !this.#adopt(parseChallenge(header(response, 'www-authenticate')), upstreamRequest.scope)) return first;
    response.body.resume();
    return this.#follow(upstreamRequest, await this.#authorization(upstreamRequest.scope));
  }

  /** Takes up what a 401 asked for; false when there is nothing new to try. */
  #adopt(challenge: Challenge | null, scope: string): boolean {
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      const stale = this.#tokenRequest(scope);
      if (stale) this.#tokens.forget(stale);
      this.#bearer = { realm: challenge.params.realm, service: challenge.params.service };
      return true;
    }
    if (challenge?.scheme === 'basic' && this.#credentials && !this.#basic) {
      this.#basic = true;
      return true;
    }
    return false;
  }

  /** One request and its redirects; `own`: the answer came from the upstream's origin (`from`: its host). Authorization goes there only. */
  async #follow(upstreamRequest: UpstreamRequest, authorization: string | null): Promise<{ response: Dispatcher.ResponseData; own: boolean; from: string }> {
    let url = new URL(`${this.url}${upstreamRequest.path}`);
    for (let hop = 0; ; hop++) {
      const own = url.origin === this.#origin;
      const headers: Record<string, string> = { ...upstreamRequest.headers };
      if (authorization && own) headers.authorization = authorization;
      const response = await request(url, { method: upstreamRequest.method, headers, dispatcher: this.#agent });
      const location = header(response, 'location');
      if (!redirectStatuses.has(response.statusCode) || !location || hop >= maxRedirects) return { response, own, from: url.host };
      response.body.resume();
      url = new URL(location, url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError('UNKNOWN', { status: 502, message: `the upstream redirected to ${url.protocol} URL` });
    }
  }

  /** An upstream failure as a 502 naming `what` failed and, for a timeout, the setting that fired. */
  #unreachable(error: unknown, what = `upstream ${this.url}`): RegistryError {
    if (error instanceof RegistryError) return error;
    const reason = this.#reason(error);
    return new RegistryError('UNKNOWN', { status: 502, message: `${what} is unreachable: ${reason}`, detail: { upstream: this.url, reason } });
  }

  /** Why a request failed, for an operator: undici's timeout codes say little, so the setting that fired is named. */
  #reason(error: unknown): string {
    const fired = timeoutOf(error);
    if (fired) return `${fired === 'connect' ? 'no connection' : 'no answer'} within timeouts.${fired} (${this.#options.timeouts[fired]} ms)`;
    const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
    return code ?? (error instanceof Error ? error.message : String(error));
  }

  /**
   * One GET of exactly `url`, a host that is not the upstream (a foreign layer's), on this
   * client's connections and timeouts: never with credentials, and no redirect followed (the
   * caller decides where one may lead). A failure is an Error saying why, naming the timeout that fired.
   */
  async getElsewhere(url: URL): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method: 'GET', dispatcher: this.#agent });
    } catch (error) {
      throw new Error(this.#reason(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
