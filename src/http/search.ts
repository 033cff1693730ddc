import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import { isDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { Repository } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { resolutionOrder, VirtualRepository } from '../repos/virtual.js';
import type { TrustedProxies } from '../routing/proxies.js';
import type { SearchQuery } from '../store/metadata/types.js';
import { apiCaller } from './api-caller.js';
import type { Env } from './env.js';
import { requestInfo } from './request.js';

// GET /api/search/docker?image=&tag=&digest=&label=&repos=&n=&last= — tags of local and remote
// repositories (a virtual repository named in repos stands for its members), found by image
// name, tag (each exact or with * and ? wildcards), manifest digest (an index is found by the
// digest of any of its platform images too) or label (key, or key=value, from the image
// config); every given key must match. Only images the caller may read are answered, paged in
// (repository, image, tag) order: n results (default 100, at most 1000), and a Link to the next
// page whose `last` is an opaque cursor. Artifactory has no Docker search endpoint of this kind
// (its UI uses AQL); the names follow its search API (repos=, results).

interface Options {
  live: () => { repositories: RepositorySet; trustedProxies: TrustedProxies };
  auth: AuthService | null;
}

const defaultPage = 100;
const maxPage = 1000;

function invalid(message: string): RegistryError {
  return new RegistryError('REQUEST_INVALID', { message });
}

// A cursor may name a tag the caller may not read (the last one a page scanned): with access
// control on, it is sealed; without it, every caller reads everything.
function cursor(after: [string, string, string], auth: AuthService | null): string {
  const text = JSON.stringify(after);
  return auth ? auth.cursors.seal(text) : Buffer.from(text).toString('base64url');
}

function parseCursor(text: string, auth: AuthService | null): [string, string, string] {
  try {
    const value = JSON.parse((auth ? auth.cursors.open(text) : Buffer.from(text, 'base64url').toString('utf8')) ?? '') as unknown;
    if (Array.isArray(value) && value.length === 3 && value.every((item) => typeof item === 'string')) return value as [string, string, string];
  } catch {
    // answered below
  }
  throw invalid('last is not a cursor from a previous page');
}

// The name and tag grammars' characters, with the * and ? wildcards; as long as a name may be.
const imagePattern = /^[a-z0-9._/*?-]{1,255}$/;
const tagPattern = /^[A-Za-z0-9_.*?-]{1,128}$/;

function pattern(key: string, value: string, grammar: RegExp): string {
  if (!grammar.test(value)) throw invalid(`${key} ${JSON.stringify(value.slice(0, 300))} is not a${key === 'image' ? 'n image name' : ' tag'} or a pattern of one (* and ? as wildcards)`);
  return value;
}

/** The leaf repositories (local and remote) to search. */
function leaves(selected: Repository[]): Repository[] {
  const found = selected.flatMap((repository) => (repository instanceof VirtualRepository ? resolutionOrder(repository.members) : [repository]));
  return [...new Set(found)];
}

export function searchRoute(app: Hono<Env>, options: Options): void {
  app.get('/api/search/docker', async (c) => {
    const { repositories, trustedProxies } = options.live();
    const info = requestInfo(c, trustedProxies);
    const caller = await apiCaller(c, options.auth, info);
    const q = c.req.query();
    const query: Omit<SearchQuery, 'limit'> = { repositories: [], after: q.last ? parseCursor(q.last, options.auth) : null };
    if (q.image) query.image = pattern('image', q.image, imagePattern);
    if (q.tag) query.tag = pattern('tag', q.tag, tagPattern);
    if (q.digest) {
      if (!isDigest(q.digest)) throw invalid(`digest ${JSON.stringify(q.digest)} is not a digest (sha256:<64 hex digits>)`);
      query.digest = q.digest;
    }
    if (q.label) {
      const equals = q.label.indexOf('=');
      query.label = equals < 0 ? { key: q.label } : { key: q.label.slice(0, equals), value: q.label.slice(equals + 1) };
      if (!query.label.key) throw invalid('label takes key or key=value');
    }
    if (!query.image && !query.tag && !query.digest && !query.label) throw invalid('search by at least one of image, tag, digest, label');
    const n = q.n === undefined ? defaultPage : Number(q.n);
    if (!/^\d{1,4}$/.test(q.n ?? '1') || n < 1 || n > maxPage) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', { message: `invalid n=${JSON.stringify(q.n)}: expected 1 to ${maxPage}`, detail: { n: q.n } });
    }
    const named = q.repos === undefined ? null : q.repos.split(',');
    if (named?.includes('')) {
      throw new RegistryError('REQUEST_INVALID', { message: `repos ${JSON.stringify(q.repos.slice(0, 300))} has an empty repository key: give keys separated by commas`, detail: { parameter: 'repos' } });
    }
    for (const key of named ?? []) caller.visible(key, repositories);
    const selected = named ? named.map((key) => repositories.get(key)) : repositories.all();
    query.repositories = leaves(selected).map((repository) => repository.key).filter((key) => caller.access.readsSomething(key)).sort();
    const { rows, resume } = await repositories.management!.catalog.search(query, n, (row) => caller.may(row.repo, row.name, 'read'));
    const next = resume ? cursor(resume, options.auth) : null;
    const results = rows.map((row) => ({
      repository: row.repo,
      image: row.name,
      tag: row.tag,
      digest: row.digest,
      pushed: new Date(row.pushed_at).toISOString(),
      uri: `${info.origin}/api/docker/${row.repo}/info/${row.name}/${row.tag}`,
    }));
    const params = new URLSearchParams(Object.entries(q).filter(([key]) => key !== 'last'));
    if (next) params.set('last', next);
    return c.json({ results, next }, 200, next ? { Link: `</api/search/docker?${params}>; rel="next"` } : {});
  });
}
