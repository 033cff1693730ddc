import type { Dispatcher } from 'undici';
import { RegistryError } from '../oci/errors.js';
import type { Descriptor } from '../oci/manifest.js';
import { fetchableUrl, urlAllowedBy } from '../oci/ant.js';
import type { Readable } from 'node:stream';
import { header, maxRedirects, redirectStatuses } from './client.js';
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

/** One request of a foreign-layer fetch: the upstream client's getElsewhere (its connections and timeouts). */
export type GetElsewhere = (url: URL) => Promise<Dispatcher.ResponseData>;

/** Where a redirect from `url` leads, as a fetch would go there; null when that is no fetchable URL (oci/ant.ts). */
function redirectTarget(url: URL, location: string): URL | null {
  try {
    return fetchableUrl(new URL(location, url).href);
  } catch {
    return null;
  }
}

/**
 * Fetches a foreign layer from the first of its urls that the allow patterns permit: exactly the
 * URL that was matched, so URLs that no pattern allows are never contacted (no SSRF through a
 * manifest); no credentials are sent (the host is not the upstream). A redirect is followed only
 * to a URL the patterns allow, checked as the layer's own are; one that leads elsewhere fails that
 * URL without contacting its target. `from`: the host that answered, for the log.
 */
export async function fetchForeignLayer(layer: Descriptor, allow: readonly string[], get: GetElsewhere): Promise<{ size: number; body: Readable; from: string }> {
  let failure = '';
  for (let url of allowedUrls(layer, allow)) {
    try {
      for (let hop = 0; ; hop++) {
        const response = await get(url);
        if (response.statusCode === 200) return { size: layer.size, body: response.body, from: url.host };
        response.body.resume();
        const location = header(response, 'location');
        if (!redirectStatuses.has(response.statusCode) || location === undefined) throw new Error(`answered ${response.statusCode}`);
        if (hop >= maxRedirects) throw new Error(`redirected more than ${maxRedirects} times`);
        const target = redirectTarget(url, location);
        if (!target || !urlAllowedBy(allow, target)) throw new Error(`redirected to ${shownUrl(target ?? location)}, which foreignLayers.allow does not permit`);
        url = target;
      }
    } catch (error) {
      failure = `${shownUrl(url)}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  throw new RegistryError('BLOB_UNKNOWN', { status: 502, message: `foreign layer ${layer.digest} could not be fetched: ${failure}`, detail: { digest: layer.digest }, configuration: true });
}
