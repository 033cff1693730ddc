// Ant-style patterns, as Artifactory's permission targets and foreign-layer allowlist use them:
// the text is split on "/"; "**" matches any number of segments, "*" any characters within one
// segment, "?" exactly one character.

function segmentPattern(segment: string): RegExp {
  const source = segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${source}$`);
}

function matchSegments(pattern: string[], path: string[]): boolean {
  if (pattern.length === 0) return path.length === 0;
  const [head, ...rest] = pattern;
  if (head === '**') {
    for (let skip = 0; skip <= path.length; skip++) if (matchSegments(rest, path.slice(skip))) return true;
    return false;
  }
  return path.length > 0 && segmentPattern(head!).test(path[0]!) && matchSegments(rest, path.slice(1));
}

export function antMatch(pattern: string, path: string): boolean {
  return matchSegments(pattern.split('/'), path.split('/'));
}

// URLs are matched as they will be fetched: parsed once (WHATWG, as undici parses them), then only
// the parts that say where the request goes, "scheme://host[:port]/path" (the host lowercased, a
// default port left out, dot segments resolved), none of which can hold a "/" of its own. The
// text as written is never matched: "http://a:1\.allowed.example/" is host "a:1", path
// "/.allowed.example/", and a "*" over the text would have taken it for a host of allowed.example.
// URLs with userinfo are refused outright. "https://github.com/**" allows every URL on github.com;
// "**/github.com/**" also matches that segment in other hosts' paths; "**" allows everything.

/** The URL to fetch, or null when `text` is no http(s) URL or carries userinfo. */
export function fetchableUrl(text: string): URL | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') return null;
  url.hash = ''; // never sent
  return url;
}

/** A pattern's scheme and host as a URL's are written: lowercase, no default port (left alone when they hold wildcards). */
function urlPattern(pattern: string): string {
  const anchored = /^([^/]+:)\/\/([^/]*)(.*)$/.exec(pattern);
  if (!anchored) return pattern;
  const scheme = anchored[1]!.toLowerCase();
  let host = anchored[2]!.toLowerCase();
  if (!/[*?]/.test(scheme + host)) host = fetchableUrl(`${scheme}//${host}`)?.host ?? host;
  return `${scheme}//${host}${anchored[3]}`;
}

export function urlAllowedBy(patterns: readonly string[], url: URL): boolean {
  const where = `${url.protocol}//${url.host}${url.pathname}`;
  return patterns.some((pattern) => antMatch(urlPattern(pattern), where));
}
