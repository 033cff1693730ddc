import { request } from 'undici';
import { RegistryError } from '../oci/errors.js';
import type { Descriptor } from '../oci/manifest.js';
import { fetchableUrl, urlAllowedBy } from '../oci/ant.js';
import type { Readable } from 'node:stream';
import { shownUrl } from './shown.js';

/**
 * The layer's URLs that the patterns allow, parsed (oci/ant.ts); DENIED, naming the patterns, when
 * none. Its errors name configuration (patterns, hosts): for administrators (http/request.ts).
 */
export function allowedUrls(layer: Descriptor, allow: readonly string[]): URL[] {
  const urls = (layer.urls ?? []).map(fetchableUrl).filter((url): url is URL => url !== null && urlAllowedBy(allow, url));
  if (urls.length === 0) {
    const shown = (layer.urls ?? []).map(shownUrl);
    throw new RegistryError('DENIED', {
      message: `foreign layer ${layer.digest} is only at ${JSON.stringify(shown)}, and foreignLayers.allow ${JSON.stringify(allow)} permits none of them`,
      detail: { digest: layer.digest, urls: shown, allow },
      configuration: true,
    });
  }
  return urls;
}

/**
 * Fetches a foreign layer from the first of its urls that the allow patterns permit: exactly the
 * URL that was matched, so URLs that no pattern allows are never contacted (no SSRF through a
 * manifest); no credentials are sent, and redirects are not followed (a redirect could leave the
 * allowed hosts). `from`: the host that answered, for the log.
 */
export async function fetchForeignLayer(layer: Descriptor, allow: readonly string[], timeoutMs: number): Promise<{ size: number; body: Readable; from: string }> {
  const urls = allowedUrls(layer, allow);
  let failure = '';
  for (const url of urls) {
    const where = shownUrl(url);
    try {
      const response = await request(url.href, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      if (response.statusCode === 200) return { size: layer.size, body: response.body, from: url.host };
      response.body.resume();
      failure = `${where} answered ${response.statusCode}`;
    } catch (error) {
      failure = `${where}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
    }
  }
  throw new RegistryError('BLOB_UNKNOWN', { status: 502, message: `foreign layer ${layer.digest} could not be fetched: ${failure}`, detail: { digest: layer.digest }, configuration: true });
}
