import { RegistryError } from '../../oci/errors.js';
import { lockRows, placeholders, type Sql } from './sql.js';
import type { ImageRef } from './types.js';

// The image's manifests that reference $3 (a blob or a manifest), directly or through indexes
// nested in indexes, however deep: references form a DAG (a digest names its content, so no
// manifest reaches itself) and UNION visits each manifest of the image once.
const usersOf = `WITH RECURSIVE users(digest) AS (
  SELECT f.digest FROM manifest_references f JOIN repository_manifests r ON r.digest = f.digest WHERE f.target = $3 AND r.repo = $1 AND r.name = $2
  UNION
  SELECT f.digest FROM users u JOIN manifest_references f ON f.target = u.digest AND f.kind = 'manifest'
  JOIN repository_manifests r ON r.digest = f.digest WHERE r.repo = $1 AND r.name = $2)`;

/**
 * In the transaction that unlinks: refuses (409 DENIED, naming the manifest and its tag) to
 * unlink what a tagged manifest of the image still needs, as that tag would no longer pull. The
 * link's row is locked first, so a push that names it has either committed (and is seen here)
 * or waits, and then finds it gone.
 */
export async function refuseWhileTagged(sql: Sql, table: 'repository_manifests' | 'repository_blobs', image: ImageRef, digest: string): Promise<void> {
  const params = [image.repo, image.name, digest];
  await sql.get(`SELECT 1 AS one FROM ${table} WHERE repo = $1 AND name = $2 AND digest = $3${lockRows(sql, 'update')}`, params);
  const user = await sql.get<{ digest: string; tag: string }>(
    `${usersOf} SELECT t.digest, MIN(t.tag) AS tag FROM users u JOIN tags t ON t.repo = $1 AND t.name = $2 AND t.digest = u.digest GROUP BY t.digest ORDER BY 2, 1 LIMIT 1`,
    params,
  );
  if (!user) return;
  throw new RegistryError('DENIED', {
    status: 409,
    message: `${table === 'repository_blobs' ? 'blob' : 'manifest'} ${digest} is used by manifest ${user.digest} (tag ${user.tag}) of ${image.repo}/${image.name}; delete the tag or the manifest first`,
    detail: { digest, manifest: user.digest, tag: user.tag },
  });
}

/**
 * What the manifests `digests` need beyond themselves, however deep indexes nest: the manifests
 * and blobs (not foreign layers) their references reach. References are content-addressed, the
 * same in every image; whether the image holds them is for the caller to check.
 */
export async function neededBy(sql: Sql, digests: string[]): Promise<{ manifests: string[]; blobs: string[] }> {
  if (digests.length === 0) return { manifests: [], blobs: [] };
  const rows = await sql.all<{ target: string; kind: 'blob' | 'manifest' }>(
    `WITH RECURSIVE needs(target, kind) AS (
       SELECT target, kind FROM manifest_references WHERE digest IN (${placeholders(digests.length)}) AND kind <> 'foreign'
       UNION
       SELECT f.target, f.kind FROM needs n JOIN manifest_references f ON f.digest = n.target WHERE n.kind = 'manifest' AND f.kind <> 'foreign')
     SELECT target, kind FROM needs ORDER BY target`,
    digests,
  );
  const of = (kind: 'blob' | 'manifest') => rows.filter((row) => row.kind === kind).map((row) => row.target);
  return { manifests: of('manifest'), blobs: of('blob') };
}
