import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { Agent, get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { Client, axios, crypto as acmeCrypto } from 'acme-client';
import { prepareDirectory } from '../config/directories.js';
import { ConfigError } from '../config/errors.js';
import type { AcmeConfig, Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { namesOf } from './files.js';
import { writePrivateFile } from './private-file.js';
import { systemTimer, type SetTimer } from '../timers.js';

// TLS mode acme: one certificate for the domains of config.acme from an RFC 8555 directory. HTTP-01
// challenges are answered by every plain listener (GET /.well-known/acme-challenge/<token>),
// TLS-ALPN-01 ones by the acme listeners themselves (alpn-challenge.ts).
//
//   certsDir/acme/account.key      the account key: made once, reused for every order (0600)
//   certsDir/acme/certificate.pem  the chain followed by its private key (0600), replaced by one
//                                  rename, so a crash never leaves a certificate without its key
//
// Renewal comes renewBefore ahead of expiry, or a third of the lifetime ahead for certificates
// shorter-lived than that. A failed order is logged and retried with backoff (retryAfter,
// doubling, at most an hour) while the current certificate keeps serving.

export interface ServedCertificate {
  cert: string;
  key: string;
}

/**
 * What listeners need of ACME: the certificate to serve and the challenge answers. The primary's
 * AcmeCertificates orders and renews; with workers, each worker holds a relay of it.
 */
export interface AcmeAnswers {
  readonly current: ServedCertificate | null;
  onCertificate(subscriber: (served: ServedCertificate) => void): void;
  keyAuthorization(token: string): string | undefined;
  alpnCertificate(name: string): ServedCertificate | undefined;
}

/** A challenge answer appearing (value) or going (null), for relays in other processes. */
export type ChallengeChange = { kind: 'http-01'; token: string; keyAuthorization: string | null } | { kind: 'tls-alpn-01'; name: string; certificate: ServedCertificate | null };

interface Current extends ServedCertificate {
  names: string[];
  notBefore: number;
  notAfter: number;
  issuer: string;
}

/** The time and timers of renewals and retries (tests pass a clock they move by hand). */
export interface AcmeClock {
  now(): number;
  setTimer: SetTimer;
}

const systemClock: AcmeClock = { now: () => Date.now(), setTimer: systemTimer };

/** The certificate's file in certsDir/acme/ (the layout above). */
const certificateName = 'certificate.pem';

/** Where Wharf keeps its ACME certificate (chain, then key, in one file). */
export function acmeCertificateFile(certsDir: string): string {
  return join(certsDir, 'acme', certificateName);
}

/** The ACME certificate file, when the config has acme listeners and Wharf holds one (a reverse proxy's site may serve it). */
export function issuedAcmeCertificate(config: Config): string | null {
  const file = acmeCertificateFile(config.certsDir);
  return config.acme && existsSync(file) ? file : null;
}

const maxRetryMs = 3_600_000;
// setTimeout holds at most ~24.8 days; longer waits are taken a day at a time.
const maxTimerMs = 86_400_000;

function parse(pem: string): Current {
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----\n?/.exec(pem)?.[0];
  if (!key) throw new Error('no private key in it');
  const cert = pem.replace(key, '');
  const leaf = new X509Certificate(cert);
  if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not match the certificate');
  return { cert, key, names: namesOf(leaf), notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo), issuer: leaf.issuer.replace(/\n/g, ', ') };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

function describeError(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 500);
  return /externalAccountBinding|externalAccountRequired/.test(message) ? `${message} (this CA wants externalAccountBinding: kid and hmacKey, beside the listener's tls mode acme)` : message;
}

export class AcmeCertificates implements AcmeAnswers {
  readonly #config: AcmeConfig;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #agent: Agent | undefined;
  readonly #clock: AcmeClock;
  /** HTTP-01: token → key authorization. */
  readonly #challenges = new Map<string, string>();
  /** TLS-ALPN-01: name → the challenge certificate. */
  readonly #alpnCertificates = new Map<string, ServedCertificate>();
  readonly #subscribers = new Set<(served: ServedCertificate) => void>();
  readonly #challengeWatchers = new Set<(change: ChallengeChange) => void>();
  #current: Current | null;
  #cancelTimer: (() => void) | null = null;
  #failures = 0;
  #closed = false;

  private constructor(config: AcmeConfig, dir: string, current: Current | null, agent: Agent | undefined, log: Logger, clock: AcmeClock) {
    this.#config = config;
    this.#clock = clock;
    this.#agent = agent;
    this.#dir = dir;
    this.#current = current;
    this.#log = log;
  }

  /**
   * Loads the stored certificate, if there is a usable one; start() then keeps it current.
   * `where` is the settings' config path, for messages.
   */
  static async open(config: AcmeConfig, where: string, certsDir: string, log: Logger, clock = systemClock): Promise<AcmeCertificates> {
    // One retry policy, ours (backoff per order); acme-client would otherwise retry each request
    // up to five times over more than a minute. Its badNonce retry stays.
    (axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;
    let agent: Agent | undefined;
    if (config.caFile) {
      let ca: string;
      try {
        ca = await readFile(config.caFile, 'utf8');
      } catch (error) {
        throw new ConfigError(`${where}.caFile`, `cannot read ${config.caFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      // acme-client talks through one axios instance: trust the private CA besides the public ones.
      agent = new Agent({ ca: [...rootCertificates, ca] });
      axios.defaults.httpsAgent = agent;
    }
    const dir = join(certsDir, 'acme');
    await prepareDirectory(certsDir, 'certsDir');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let current: Current | null = null;
    try {
      current = parse(await readFile(join(dir, certificateName), 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`ACME: ignoring ${join(dir, certificateName)}: ${describeError(error)}`);
    }
    return new AcmeCertificates(config, dir, current, agent, log, clock);
  }

  /** The certificate to serve, or null until the first order completes. */
  get current(): ServedCertificate | null {
    return this.#current;
  }

  /** What `wharf certs` prints: where the certificate is, what it covers, when it renews. */
  describe(): string {
    const names = this.#config.domains.join(', ');
    const current = this.#current;
    if (!current) return `ACME: no certificate yet for ${names}; wharf serve orders it from ${this.#config.directory} (${this.#config.challenge})\n`;
    return [
      `ACME certificate: ${join(this.#dir, certificateName)} (chain, then its key)`,
      `  for ${current.names.join(', ')}${sameNames(current.names, this.#config.domains) ? '' : ` (the config now names ${names}: ordered again on start)`}`,
      `  issued by ${current.issuer}, valid until ${new Date(current.notAfter).toISOString()}`,
      `  renewal from ${new Date(this.#clock.now() + this.#renewalDelay()).toISOString()}, from ${this.#config.directory}`,
      '',
    ].join('\n');
  }

  /** Called with each new certificate (the listeners swap their TLS context). */
  onCertificate(subscriber: (served: ServedCertificate) => void): void {
    this.#subscribers.add(subscriber);
  }

  /** Called when a challenge answer appears or goes (workers answer challenges too). */
  onChallenge(watcher: (change: ChallengeChange) => void): void {
    this.#challengeWatchers.add(watcher);
  }

  #tell(change: ChallengeChange): void {
    for (const watcher of this.#challengeWatchers) watcher(change);
  }

  /** The key authorization for an HTTP-01 token while an order waits for it. */
  keyAuthorization(token: string): string | undefined {
    return this.#challenges.get(token);
  }

  /** The TLS-ALPN-01 certificate for a name while an order waits for it. */
  alpnCertificate(name: string): ServedCertificate | undefined {
    return this.#alpnCertificates.get(name);
  }

  /** Orders now if there is no certificate for the configured names, else schedules renewal. */
  start(): void {
    this.#schedule(this.#renewalDelay());
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer?.();
  }

  #renewalDelay(): number {
    const current = this.#current;
    if (!current || !sameNames(current.names, this.#config.domains)) return 0;
    const ahead = Math.min(this.#config.renewBefore, (current.notAfter - current.notBefore) / 3);
    return Math.max(0, current.notAfter - ahead - this.#clock.now());
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#cancelTimer?.();
    this.#cancelTimer = this.#clock.setTimer(Math.min(delay, maxTimerMs), () => {
      if (delay > maxTimerMs) this.#schedule(this.#renewalDelay());
      else void this.#order();
    });
  }

  async #order(): Promise<void> {
    const names = this.#config.domains;
    try {
      const issued = await this.#issue();
      if (this.#closed) return;
      this.#current = issued;
      this.#failures = 0;
      for (const subscriber of this.#subscribers) subscriber(issued);
      const next = this.#renewalDelay();
      this.#log.info(`ACME: certificate for ${names.join(', ')} issued by ${issued.issuer}, valid until ${new Date(issued.notAfter).toISOString()}; renewal from ${new Date(this.#clock.now() + next).toISOString()}`);
      this.#schedule(next);
    } catch (error) {
      if (this.#closed) return;
      this.#failures += 1;
      const retry = Math.min(this.#config.retryAfter * 2 ** (this.#failures - 1), maxRetryMs);
      const serving = this.#current ? `the current certificate (valid until ${new Date(this.#current.notAfter).toISOString()}) keeps serving` : 'no certificate yet';
      this.#log.warn(`ACME: order for ${names.join(', ')} from ${this.#config.directory} failed (attempt ${this.#failures}): ${describeError(error)}; retrying in ${Math.round(retry / 1000)}s; ${serving}`);
      this.#schedule(retry);
    }
  }

  /**
   * Reads the directory before an order: acme-client reports an unreachable or untrusted server
   * as an internal TypeError, this names the cause (ECONNREFUSED, a certificate error, a status).
   */
  #checkDirectory(): Promise<void> {
    const url = this.#config.directory;
    return new Promise((resolve, reject) => {
      const request = (url.startsWith('https:') ? httpsGet : httpGet)(url, this.#agent ? { agent: this.#agent } : {}, (response) => {
        response.resume();
        if (response.statusCode === 200) resolve();
        else reject(new Error(`the directory answered HTTP ${response.statusCode}`));
      });
      request.setTimeout(30_000, () => request.destroy(new Error('no answer from the directory within 30s')));
      request.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`cannot reach the directory: ${error.code ?? error.message}`)));
    });
  }

  async #issue(): Promise<Current> {
    await this.#checkDirectory();
    const client = new Client({
      directoryUrl: this.#config.directory, accountKey: await this.#accountKey(),
      ...(this.#config.externalAccountBinding ? { externalAccountBinding: { ...this.#config.externalAccountBinding } } : {}),
      // Poll order and authorization status every second or so, not from 5 s up.
      backoffMin: 1000, backoffMax: 10_000,
    });
    const [key, csr] = await acmeCrypto.createCsr({ altNames: [...this.#config.domains] }, await acmeCrypto.createPrivateEcdsaKey());
    const chain = await client.auto({
      csr,
      ...(this.#config.email ? { email: this.#config.email } : {}),
      termsOfServiceAgreed: true,
      // The CA checks reachability itself; a self-check from inside the network proves nothing.
      skipChallengeVerification: true,
      challengePriority: [this.#config.challenge],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type === 'http-01') {
          this.#challenges.set(challenge.token, keyAuthorization);
          this.#tell({ kind: 'http-01', token: challenge.token, keyAuthorization });
        } else {
          const [alpnKey, alpnCert] = await acmeCrypto.createAlpnCertificate(authz, keyAuthorization);
          const certificate = { key: alpnKey.toString(), cert: alpnCert.toString() };
          this.#alpnCertificates.set(authz.identifier.value, certificate);
          this.#tell({ kind: 'tls-alpn-01', name: authz.identifier.value, certificate });
        }
      },
      challengeRemoveFn: async (authz, challenge) => {
        this.#challenges.delete(challenge.token);
        this.#alpnCertificates.delete(authz.identifier.value);
        if (challenge.type === 'http-01') this.#tell({ kind: 'http-01', token: challenge.token, keyAuthorization: null });
        else this.#tell({ kind: 'tls-alpn-01', name: authz.identifier.value, certificate: null });
      },
    });
    const pem = `${chain.trim()}\n${key.toString().trim()}\n`;
    const issued = parse(pem);
    await writePrivateFile(join(this.#dir, certificateName), pem);
    return issued;
  }

  async #accountKey(): Promise<Buffer> {
    const path = join(this.#dir, 'account.key');
    try {
      return await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const key = await acmeCrypto.createPrivateEcdsaKey();
      await writePrivateFile(path, key);
      return key;
    }
  }
}
