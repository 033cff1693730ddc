// RFC 7235 challenges as registries send them:
//   WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"
//   WWW-Authenticate: Basic realm="Registry Realm"

export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

const paramPattern = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;

export function parseChallenge(header: string | undefined): Challenge | null {
  if (!header) return null;
  const match = /^\s*(Bearer|Basic)\b(.*)$/i.exec(header);
  if (!match) return null;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of match[2]!.matchAll(paramPattern)) {
    params[key!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare!;
  }
  return { scheme: match[1]!.toLowerCase() as Challenge['scheme'], params };
}
