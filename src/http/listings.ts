import type { Access } from '../auth/access.js';
import type { Sealer } from '../auth/sealer.js';
import { RegistryError } from '../oci/errors.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import { maxScanned, type Page } from '../repos/repository.js';
import type { RepositorySet } from '../repos/set.js';
import { displayName, routeUrl, type Route } from '../routing/route.js';
import { apiVersionHeader, type Ctx } from './env.js';
import { readOptions, readOptionsFor, type Target } from './target.js';

// Tag and catalog listing with the spec's pagination (n, last, Link rel="next"), and referrers.

/** No n: everything, up to this many, with a Link header if there is more. */
const defaultPageSize = 10_000;

function pageOf(c: Ctx): Page {
  const n = c.req.query('n');
  const last = c.req.query('last');
  if (n !== undefined && !/^\d{1,6}$/.test(n)) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', { message: `invalid n=${JSON.stringify(n)}: expected a whole number of results from 0 to 999999`, detail: { n } });
  }
  return { n: n === undefined ? defaultPageSize : Number(n), last: last || undefined };
}

function json(body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { ...apiVersionHeader, 'Content-Type': 'application/json; charset=utf-8', ...headers },
  });
}

/** The Link to the page after `last` (none when `last` is undefined), at `path` on the request's route. */
function linkHeader(route: Route, path: string, page: Page, last: string | undefined): Record<string, string> {
  return last === undefined ? {} : { Link: `<${routeUrl(route, path, { n: String(page.n), last })}>; rel="next"` };
}

export async function listTags(target: Target): Promise<Response> {
  const { c, route, repository, name } = target;
  const page = pageOf(c);
  const listing = await repository.listTags(name, page, readOptions(target));
  return json(
    { name: displayName(route, repository.key, name), tags: listing.items },
    { ...linkHeader(route, `${name}/tags/list`, page, listing.more ? listing.items.at(-1) : undefined), ...(listing.warning ? { Warning: listing.warning } : {}) },
  );
}

// A page that stops at maxScanned on a name the caller may not read goes on after that name, which
// the Link carries sealed (`last=~…`; no name has a ~), so it tells the caller nothing.
const sealedMark = '~';

function sealedLast(name: string, cursors: Sealer): string {
  return sealedMark + cursors.seal(JSON.stringify({ catalog: name }));
}

function openLast(last: string | undefined, cursors: Sealer | null): string | undefined {
  if (!last?.startsWith(sealedMark)) return last;
  try {
    const value = (JSON.parse(cursors?.open(last.slice(1)) ?? '') as { catalog?: unknown }).catalog;
    if (typeof value === 'string') return value;
  } catch {
    // answered below
  }
  throw new RegistryError('REQUEST_INVALID', { message: 'last is not a name or a cursor from a previous page', detail: { last } });
}

/**
 * The catalog of one repository (below its key prefix), or of all of them (/v2/_catalog), where
 * image names carry their repository key and pages run across repositories in name order. Only
 * images the caller may read are listed; a page is filled from the names that follow, and a Link
 * is sent only when another readable name follows it, or when the page stopped at maxScanned
 * names (then it may be short, even empty).
 */
export async function listCatalog(c: Ctx, route: Route, repositories: RepositorySet, access: Access, cursors: Sealer | null): Promise<Response> {
  const requested = pageOf(c);
  const page = { ...requested, last: openLast(requested.last, cursors) };
  const routed = route.repoKey === null ? null : repositories.find(route.repoKey);
  const scope = (route.repoKey === null ? repositories.all() : routed ? [routed] : []).filter((r) => access.readsSomething(r.key));
  // Sort by "key/" so that the order of keys is the order of the names they prefix.
  const ordered = scope.sort((a, b) => (`${a.key}/` < `${b.key}/` ? -1 : 1));
  const items: string[] = [];
  let next: string | undefined;
  // Names read, and the last of them as the caller would see it.
  let scanned = 0;
  let stopped: string | undefined;
  search: for (const repository of ordered) {
    const prefix = `${repository.key}/`;
    let last = page.last;
    if (last && route.namesIncludeKey) {
      if (!last.startsWith(prefix) && last > prefix) continue; // every name here sorts before `last`
      last = last.startsWith(prefix) ? last.slice(prefix.length) : undefined;
    }
    for (;;) {
      if (scanned === maxScanned) {
        next = stopped === items.at(-1) || !cursors ? stopped : sealedLast(stopped!, cursors);
        break search;
      }
      // One more than the page needs: a readable name after a full page means there is a next one.
      const n = Math.min(page.n - items.length + 1, defaultPageSize, maxScanned - scanned);
      const listing = await repository.listImages({ n, last }, readOptionsFor(access, repository, ''));
      scanned += listing.items.length;
      for (const name of listing.items) {
        stopped = displayName(route, repository.key, name);
        if (!access.principalMay(repository.key, name, 'read')) continue;
        if (items.length === page.n) {
          next = items.at(-1);
          break search;
        }
        items.push(stopped);
      }
      if (listing.scannedTo !== undefined) {
        // A virtual repository's member stopped at its own cap: go on from there.
        stopped = displayName(route, repository.key, listing.scannedTo);
        scanned = maxScanned;
        continue;
      }
      if (!listing.more) break;
      last = listing.items.at(-1);
    }
  }
  return json({ repositories: items }, linkHeader(route, '_catalog', requested, next));
}

export async function listReferrers(target: Target, digest: string): Promise<Response> {
  const { c, repository, name } = target;
  const artifactType = c.req.query('artifactType');
  const all = await repository.referrers(name, digest, readOptions(target));
  const manifests = artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
  return new Response(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }), {
    status: 200,
    headers: {
      ...apiVersionHeader,
      'Content-Type': OCI_INDEX,
      ...(artifactType ? { 'OCI-Filters-Applied': 'artifactType' } : {}),
    },
  });
}
