import type { SecureServerOptions } from 'node:http2';
import type { Server as TlsServer } from 'node:tls';
import { acmeSettingsPath } from '../config/acme.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { AcmeAnswers, AcmeCertificates, AcmeClock } from '../tls/acme.js';
import { CertificateFiles } from '../tls/files.js';
import { certificateNames, ensureSelfSigned } from '../tls/self-signed.js';
import { watchFiles, type FileWatch } from '../tls/watch.js';

// What each TLS listener serves, kept current without a restart: Wharf's own certificate and the
// operator's files are watched on disk (and re-read on reload), the ACME one is swapped in when
// renewed. A change swaps the server's default context, so clients that send no SNI (connecting
// by IP address) get the new certificate as well.

/**
 * The ACME certificates `config` asks for, or null. acme-client is loaded only here, so a server
 * without ACME does not pay its memory (~25 MiB).
 */
export async function openAcme(config: Config, logger: Logger, clock?: AcmeClock): Promise<AcmeCertificates | null> {
  if (!config.acme) return null;
  const { AcmeCertificates } = await import('../tls/acme.js');
  return AcmeCertificates.open(config.acme, acmeSettingsPath(config), config.certsDir, logger, clock);
}

export class ListenerCertificates {
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #acme: AcmeAnswers | null;
  /** Wharf's own server certificate (certsDir/server.crt and server.key), when a listener uses it. */
  readonly #own: CertificateFiles | null;
  /** The operator's pairs, per files listener. */
  readonly #files = new Map<number, CertificateFiles>();
  readonly #watches: FileWatch[] = [];

  private constructor(config: Config, logger: Logger, acme: AcmeAnswers | null, own: CertificateFiles | null) {
    this.#config = config;
    this.#logger = logger;
    this.#acme = acme;
    this.#own = own;
  }

  static async open(config: Config, logger: Logger, acme: AcmeAnswers | null): Promise<ListenerCertificates> {
    const needsOwn = config.listeners.some((listener) => listener.tls === 'self-signed' || (listener.tls === 'acme' && !acme!.current));
    let own: CertificateFiles | null = null;
    if (needsOwn) {
      const material = await ensureSelfSigned(config.certsDir, certificateNames(config));
      own = await CertificateFiles.open([{ cert: material.certPath, key: material.keyPath }], 'certsDir');
    }
    const certificates = new ListenerCertificates(config, logger, acme, own);
    for (const [index, listener] of config.listeners.entries()) {
      if (listener.tls === 'files') certificates.#files.set(index, await CertificateFiles.open(listener.certificates, `listeners[${index}].tls.certificates`));
    }
    for (const [where, files] of certificates.#sources()) certificates.#watches.push(watchFiles(files.paths, () => void certificates.#refresh(where, files)));
    return certificates;
  }

  /** The CA clients trust for Wharf's own certificate, when one is served. */
  get caPath(): string | null {
    return this.#own ? `${this.#config.certsDir}/ca.crt` : null;
  }

  /** The TLS options a listener starts with; null for a plain listener. */
  serverOptions(index: number): SecureServerOptions | null {
    const listener = this.#config.listeners[index]!;
    if (listener.tls === 'none') return null;
    if (listener.tls === 'acme') return this.#acme!.current ?? this.#own!.defaults;
    const files = listener.tls === 'files' ? this.#files.get(index)! : this.#own!;
    return { ...files.defaults, SNICallback: files.sniCallback };
  }

  /** Keeps `server` (listener `index`) serving the current certificate. */
  attach(index: number, server: TlsServer): void {
    const listener = this.#config.listeners[index]!;
    const swap = (served: { key: string; cert: string }) => server.setSecureContext({ ...served });
    if (listener.tls === 'acme') this.#acme!.onCertificate(swap);
    else if (listener.tls === 'files') this.#files.get(index)!.onDefaultsChange(swap);
    else if (listener.tls === 'self-signed') this.#own!.onDefaultsChange(swap);
  }

  /**
   * On reload: issues Wharf's own certificate again when the names it must carry changed (a new
   * baseDomain), then re-reads every certificate file; each change is logged.
   */
  async reload(config: Config): Promise<void> {
    if (this.#own) {
      const names = certificateNames(config);
      if ((await ensureSelfSigned(config.certsDir, names)).issued) this.#logger.info(`tls: issued a new server certificate for ${names.dns.join(', ')}`);
    }
    for (const [where, files] of this.#sources()) await this.#refresh(where, files);
  }

  close(): void {
    for (const watch of this.#watches) watch.close();
  }

  #sources(): [string, CertificateFiles][] {
    return [
      ...(this.#own ? [['certsDir', this.#own] as [string, CertificateFiles]] : []),
      ...[...this.#files].map(([index, files]): [string, CertificateFiles] => [`listeners[${index}].tls.certificates`, files]),
    ];
  }

  async #refresh(where: string, files: CertificateFiles): Promise<void> {
    const { reloaded, failed } = await files.refresh();
    for (const problem of failed) this.#logger.warn(`tls: ${where}: cannot load ${problem}; the current certificate keeps serving`);
    for (const file of reloaded) this.#logger.info(`tls: ${where}: serving the new certificate in ${file}`);
  }
}
