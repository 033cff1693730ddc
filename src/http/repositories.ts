import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import type { RepositorySet } from '../repos/set.js';
import type { TrustedProxies } from '../routing/proxies.js';
import type { Access as Reach } from '../setup/access.js';
import { apiCaller } from './api-caller.js';
import type { Env } from './env.js';
import { requestInfo } from './request.js';

// Artifactory's GET /api/repositories[?type=local|remote|virtual][&packageType=docker]: the
// repositories the caller may read something in (anonymous callers: what anonymous may read),
// with key, type (LOCAL, REMOTE, VIRTUAL), packageType Docker, the preferred URL and every way
// clients reach it (port binding, subdomain, repository path), from the one access plan
// (setup/access.ts). Nothing else of the configuration (upstream URLs, members) is shown.

interface Options {
  live: () => { repositories: RepositorySet; trustedProxies: TrustedProxies; reach: (key: string) => Reach[] };
  auth: AuthService | null;
}

function url(reach: Reach): string {
  return `${reach.listener.tls === 'none' ? 'http' : 'https'}://${reach.prefix}`;
}

export function repositoriesRoute(app: Hono<Env>, options: Options): void {
  app.get('/api/repositories', async (c) => {
    const { repositories, trustedProxies, reach } = options.live();
    const caller = await apiCaller(c, options.auth, requestInfo(c, trustedProxies));
    const type = c.req.query('type')?.toLowerCase();
    const packageType = c.req.query('packageType')?.toLowerCase();
    if (packageType !== undefined && packageType !== 'docker') return c.json([]);
    const listed = repositories.all()
      .filter((repository) => (type === undefined || repository.kind === type) && caller.access.readsSomething(repository.key))
      .sort((a, b) => (a.key < b.key ? -1 : 1))
      .map((repository) => {
        const ways = reach(repository.key);
        return {
          key: repository.key,
          type: repository.kind.toUpperCase(),
          packageType: 'Docker',
          description: '',
          url: ways[0] ? url(ways[0]) : null,
          access: ways.map((way) => ({ method: way.method, registry: way.registry, prefix: way.prefix, url: url(way) })),
        };
      });
    return c.json(listed);
  });
}
