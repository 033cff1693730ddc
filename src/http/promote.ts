import type { Hono } from 'hono';
import type { AuthService } from '../auth/service.js';
import { RegistryError } from '../oci/errors.js';
import { requireName } from '../oci/names.js';
import { promotionTarget, type PromotionRequest } from '../repos/promotion.js';
import type { RepositorySet } from '../repos/set.js';
import type { TrustedProxies } from '../routing/proxies.js';
import { apiCaller, jsonBody } from './api-caller.js';
import type { Env } from './env.js';
import { requestInfo } from './request.js';

// Artifactory's promotion: POST /api/docker/<repoKey>/v2/promote with
//   {"targetRepo": "docker-prod", "dockerRepository": "team/app", "targetDockerRepository": null,
//    "tag": "1.0", "targetTag": null, "copy": false}
// (targetDockerRepository null: the same name; tag null: every tag of the image; targetTag null:
// the same tag; copy false: move). 200 with a line of text on success, as Artifactory answers.
// Rights: read on the source image and deploy on the target image; a move also needs delete on
// the source (it loses its tags), and overwriting a target tag that names another manifest needs
// delete on the target (Artifactory's Delete/Overwrite). Admins may do everything.

function field(body: Record<string, unknown>, key: string, required: boolean): string | null {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required) throw new RegistryError('REQUEST_INVALID', { message: `${key} is required`, detail: { field: key } });
    return null;
  }
  if (typeof value !== 'string' || value === '') throw new RegistryError('REQUEST_INVALID', { message: `${key} must be a non-empty string`, detail: { field: key } });
  return value;
}

const nameOrNull = (name: string | null) => (name === null ? null : requireName(name));

function promotionRequest(repository: string, body: Record<string, unknown>): PromotionRequest {
  const copy = body.copy ?? false;
  if (typeof copy !== 'boolean') throw new RegistryError('REQUEST_INVALID', { message: 'copy must be true or false', detail: { field: 'copy' } });
  return {
    repository,
    image: requireName(field(body, 'dockerRepository', true)!),
    targetRepository: field(body, 'targetRepo', true)!,
    targetImage: nameOrNull(field(body, 'targetDockerRepository', false)),
    tag: field(body, 'tag', false),
    targetTag: field(body, 'targetTag', false),
    copy,
  };
}

export function promoteRoute(app: Hono<Env>, options: { live: () => { repositories: RepositorySet; trustedProxies: TrustedProxies }; auth: AuthService | null }): void {
  app.post('/api/docker/:key/v2/promote', async (c) => {
    const { repositories, trustedProxies } = options.live();
    const caller = await apiCaller(c, options.auth, requestInfo(c, trustedProxies));
    const request = promotionRequest(c.req.param('key'), await jsonBody(c));
    const targetImage = request.targetImage ?? request.image;
    caller.visible(request.repository, repositories);
    caller.visible(request.targetRepository, repositories, () => caller.may(request.targetRepository, targetImage, 'deploy'));
    // Rights first: nothing about the image is told to a caller who may not promote it.
    caller.require(request.repository, request.image, 'read');
    caller.require(request.targetRepository, targetImage, 'deploy');
    if (!request.copy) caller.require(request.repository, request.image, 'delete', ' (a move takes the tags from the source; use copy: true to copy)');
    const promotion = repositories.management!.promotion;
    const plan = await promotion.plan(request);
    for (const overwrite of plan.overwrites) {
      caller.require(plan.target.repo, plan.target.name, 'delete', ` (tag ${overwrite.tag} points to ${overwrite.digest}; overwriting it needs delete)`);
    }
    const dropped = await promotion.apply(plan);
    const what = promotionTarget(plan);
    caller.audit({ action: plan.copy ? 'promote-copy' : 'promote-move', target: what, result: 'ok' });
    const lines = [
      `${plan.copy ? 'Copied' : 'Moved'} ${what.replace('->', ' to ')}: ${plan.tags.map((item) => (item.tag === item.targetTag ? item.tag : `${item.tag} as ${item.targetTag}`)).join(', ')}`,
      ...(dropped.length ? [`maxUniqueTags removed the oldest tag(s) of ${plan.target.repo}/${plan.target.name}: ${dropped.join(', ')}`] : []),
    ];
    return c.text(`${lines.join('\n')}\n`);
  });
}
