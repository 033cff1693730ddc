// Ant-style patterns over URLs, as Artifactory's foreign-layer allowlist uses them: the URL is
// split on "/" ("https://github.com/a/b" → "https:", "", "github.com", "a", "b"); "**" matches
// any number of segments, "*" any characters within one segment, "?" exactly one character.
// "**/github.com/**" therefore allows every URL on github.com, and "**" allows everything.

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

export function antMatch(pattern: string, url: string): boolean {
  return matchSegments(pattern.split('/'), url.split('/'));
}

export function allowedBy(patterns: readonly string[], url: string): boolean {
  return patterns.some((pattern) => antMatch(pattern, url));
}
