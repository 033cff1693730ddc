import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../config/errors.js';

// TLS from PEM files: the operator's cert/key pairs (tls mode files), or Wharf's own server
// certificate (self-signed). The pair whose names match the client's SNI is served, the first one
// otherwise and to clients that send no SNI (connecting by IP address). A pair replaced on disk (a
// renewal by certbot, `wharf certs --regenerate`) is served from the next handshake: SNI
// handshakes check the files' stamps, and a watch on their folders (or a reload) swaps the
// server's default context, which no callback sees.

export interface CertificatePair {
  cert: string;
  key: string;
}

interface Loaded {
  pair: CertificatePair;
  names: string[];
  context: SecureContext;
  stamp: string;
  pem: { cert: string; key: string };
}

async function stampOf(pair: CertificatePair): Promise<string> {
  const [cert, key] = await Promise.all([stat(pair.cert), stat(pair.key)]);
  return `${cert.mtimeMs}:${cert.size}:${key.mtimeMs}:${key.size}`;
}

/** The DNS names a certificate is for: its subjectAltName DNS entries, else its CN. */
export function namesOf(cert: X509Certificate): string[] {
  const sans = (cert.subjectAltName ?? '').split(', ').filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
  return sans.length ? sans : [/CN=([^\n,]+)/.exec(cert.subject)?.[1]?.toLowerCase() ?? ''];
}

function matches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && !host.slice(0, -pattern.length + 1).includes('.');
  return pattern === host;
}

async function load(pair: CertificatePair, where: string): Promise<Loaded> {
  let pem: { cert: string; key: string };
  try {
    pem = { cert: await readFile(pair.cert, 'utf8'), key: await readFile(pair.key, 'utf8') };
  } catch (error) {
    throw new ConfigError(where, `cannot read ${pair.cert} or ${pair.key}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return { pair, names: namesOf(new X509Certificate(pem.cert)), context: createSecureContext(pem), stamp: await stampOf(pair), pem };
  } catch (error) {
    throw new ConfigError(where, `${pair.cert} and ${pair.key} are not a PEM certificate and its key: ${(error as Error).message}`);
  }
}

export class CertificateFiles {
  #loaded: Loaded[];
  readonly #where: string;
  readonly #subscribers = new Set<(defaults: CertificatePair) => void>();

  private constructor(loaded: Loaded[], where: string) {
    this.#loaded = loaded;
    this.#where = where;
  }

  /** The files, for watching. */
  get paths(): string[] {
    return this.#loaded.flatMap((entry) => [entry.pair.cert, entry.pair.key]);
  }

  /** Called with the first pair's PEM whenever it changes (the server swaps its default context). */
  onDefaultsChange(subscriber: (defaults: CertificatePair) => void): void {
    this.#subscribers.add(subscriber);
  }

  /**
   * Loads every pair whose files changed; returns the certificate files that were reloaded. A pair
   * that fails to load (half-written, key and certificate not matching yet) keeps serving the old
   * one and is reported.
   */
  async refresh(): Promise<{ reloaded: string[]; failed: string[] }> {
    const reloaded: string[] = [];
    const failed: string[] = [];
    for (const index of this.#loaded.keys()) {
      const before = this.#loaded[index]!;
      try {
        if ((await this.#fresh(index)) !== before) reloaded.push(before.pair.cert);
      } catch (error) {
        failed.push(`${before.pair.cert}: ${(error as Error).message}`);
      }
    }
    return { reloaded, failed };
  }

  /** Loads and checks every pair; `where` is the config path for error messages. */
  static async open(pairs: readonly CertificatePair[], where: string): Promise<CertificateFiles> {
    return new CertificateFiles(await Promise.all(pairs.map((pair, i) => load(pair, `${where}[${i}]`))), where);
  }

  /** The first pair's PEM, for the server's default context. */
  get defaults(): { cert: string; key: string } {
    return this.#loaded[0]!.pem;
  }

  /** tls SNICallback: the pair whose names match, reloaded first if its files changed. */
  readonly sniCallback = (servername: string, callback: (error: Error | null, context?: SecureContext) => void): void => {
    const host = (servername || '').toLowerCase();
    const index = Math.max(0, this.#loaded.findIndex((entry) => entry.names.some((name) => matches(name, host))));
    this.#fresh(index).then((entry) => callback(null, entry.context), () => callback(null, this.#loaded[index]!.context));
  };

  async #fresh(index: number): Promise<Loaded> {
    const entry = this.#loaded[index]!;
    if ((await stampOf(entry.pair)) === entry.stamp) return entry;
    // Replaced on disk: load it again (a half-written file fails to load, and the old one stays).
    const reloaded = await load(entry.pair, `${this.#where}[${index}]`);
    this.#loaded = this.#loaded.map((item, i) => (i === index ? reloaded : item));
    if (index === 0) for (const subscriber of this.#subscribers) subscriber(reloaded.pem);
    return reloaded;
  }
}
