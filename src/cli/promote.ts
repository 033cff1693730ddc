import { parseArgs } from 'node:util';
import type { Config } from '../config/types.js';
import { Promotion, promotionTarget } from '../repos/promotion.js';
import { openConfiguredStore } from '../storage.js';
import { auditCli, UsageError } from './common.js';

// `wharf promote REPO IMAGE[:TAG] TARGET-REPO [--target-image NAME] [--target-tag TAG] [--copy]`:
// the promotion API's work done on the database directly, like `wharf gc`, so it works while the
// server runs (each promotion is one transaction; the server reads tags from the database on
// every request). It runs as the machine's administrator: no permission check.

/** IMAGE[:TAG]: the tag is what follows the last colon, unless a slash comes after it (a registry port). */
function imageAndTag(reference: string): { image: string; tag: string | null } {
  const colon = reference.lastIndexOf(':');
  if (colon < 0 || reference.indexOf('/', colon) >= 0) return { image: reference, tag: null };
  return { image: reference.slice(0, colon), tag: reference.slice(colon + 1) };
}

export async function promoteCommand(args: string[], loadConfig: (file: string | undefined) => Config): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, 'target-image': { type: 'string' }, 'target-tag': { type: 'string' }, copy: { type: 'boolean' } },
  });
  if (positionals.length !== 3) throw new UsageError('promote takes REPO IMAGE[:TAG] TARGET-REPO');
  const [repository, reference, targetRepository] = positionals as [string, string, string];
  const { image, tag } = imageAndTag(reference);
  const config = loadConfig(values.config);
  const store = await openConfiguredStore(config, { recover: false });
  try {
    const promotion = new Promotion({
      store,
      repositories: config.repositories,
      onTagsDropped: (event) => process.stdout.write(`wharf promote: maxUniqueTags (${event.limit}) removed the oldest tag(s) of ${event.repository}/${event.image}: ${event.tags.join(', ')}\n`),
    });
    const plan = await promotion.plan({
      repository, image, targetRepository, tag,
      targetImage: values['target-image'] ?? null,
      targetTag: values['target-tag'] ?? null,
      copy: values.copy ?? false,
    });
    await promotion.apply(plan);
    const verb = plan.copy ? 'copied' : 'moved';
    for (const item of plan.tags) {
      process.stdout.write(`wharf promote: ${verb} ${plan.source.repo}/${plan.source.name}:${item.tag} to ${plan.target.repo}/${plan.target.name}:${item.targetTag} (${item.digest})\n`);
    }
    for (const overwrite of plan.overwrites) process.stdout.write(`wharf promote: ${plan.target.repo}/${plan.target.name}:${overwrite.tag} pointed to ${overwrite.digest} and was overwritten\n`);
    auditCli({ action: plan.copy ? 'promote-copy' : 'promote-move', target: promotionTarget(plan), result: 'ok' });
  } finally {
    await store.close();
  }
}
