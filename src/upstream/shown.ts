/**
 * A URL as errors and logs may show it: scheme, host and path, never its userinfo or its query
 * (a signed URL's signature). Text that is no URL is shown up to its query.
 */
export function shownUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return String(url).split(/[?#]/, 1)[0]!;
  }
}
