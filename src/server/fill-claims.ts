import type { FillCoordinator, FillProgress, FollowedClaim } from '../cache/followed-fill.js';
import type { PrimaryHub, WorkerChannel, WorkerLink } from './ipc.js';

// Which worker fetches each digest, and who follows it (cache/followed-fill.ts), over the IPC
// channel: the primary numbers each fetch, and every note and answer names the fetch it is
// about. A worker may send a claim before it hears the end of an earlier fetch of the same
// digest, so a note is applied only to the claims answered with its number, never to whichever
// claim of that digest happens to be waiting.

type ClaimAnswer = { fill: number; lead: true } | { fill: number; lead: false; progress: FillProgress };
interface ProgressNote { digest: string; fill: number; progress: FillProgress }

const over = (progress: FillProgress) => progress.state === 'committed' || progress.state === 'failed';

interface Claim<Worker> {
  fill: number;
  leader: Worker;
  progress: FillProgress | null;
  followers: Set<Worker>;
  /** Followers that asked before the leader's first progress (they need the size): answered with it. */
  waiting: ((answer: ClaimAnswer) => void)[];
}

/** The primary's side. `forget` fails what a worker that stopped was fetching, for its followers. */
export function serveFillClaims<Worker extends WorkerLink>(hub: PrimaryHub<Worker>): { forget(worker: Worker): void } {
  const claims = new Map<string, Claim<Worker>>();
  let next = 0;
  const followed = (claim: Claim<Worker>, worker: Worker): ClaimAnswer | Promise<ClaimAnswer> => {
    claim.followers.add(worker);
    if (claim.progress) return { fill: claim.fill, lead: false, progress: claim.progress };
    return new Promise<ClaimAnswer>((resolve) => claim.waiting.push(resolve));
  };
  hub.answer('fill.claim', (body, worker) => {
    const { digest } = body as { digest: string };
    const claim = claims.get(digest);
    if (claim) return followed(claim, worker);
    claims.set(digest, { fill: ++next, leader: worker, progress: null, followers: new Set(), waiting: [] });
    return { fill: next, lead: true } satisfies ClaimAnswer;
  });
  hub.answer('fill.follow', (body, worker) => {
    const claim = claims.get((body as { digest: string }).digest);
    return claim ? followed(claim, worker) : null;
  });
  const progressed = (digest: string, claim: Claim<Worker>, progress: FillProgress) => {
    claim.progress = progress;
    for (const answer of claim.waiting.splice(0)) answer({ fill: claim.fill, lead: false, progress });
    for (const follower of claim.followers) hub.tell(follower, 'fill.progress', { digest, fill: claim.fill, progress } satisfies ProgressNote);
    if (over(progress)) claims.delete(digest);
  };
  hub.hear('fill.progress', (body, worker) => {
    const { digest, fill, progress } = body as ProgressNote;
    const claim = claims.get(digest);
    if (claim?.fill === fill && claim.leader === worker) progressed(digest, claim, progress);
  });
  return {
    forget(worker) {
      for (const [digest, claim] of claims) {
        claim.followers.delete(worker);
        if (claim.leader === worker) progressed(digest, claim, { ...(claim.progress ?? { size: null, written: 0, spool: '' }), state: 'failed', error: 'the worker fetching this blob stopped' });
      }
    },
  };
}

/** Claims this worker has asked about: what was heard for each fetch before its answer, then its listener. */
interface Asking {
  fill: number | null;
  heard: ProgressNote[];
  listener: ((progress: FillProgress) => void) | null;
}

/** A worker's side: asks the primary, and hands each fetch's notes to the claims that follow it. */
export function workerFills(channel: WorkerChannel): FillCoordinator {
  const asking = new Map<string, Set<Asking>>();
  const drop = (digest: string, entry: Asking) => {
    const entries = asking.get(digest);
    entries?.delete(entry);
    if (entries?.size === 0) asking.delete(digest);
  };
  const deliver = (digest: string, entry: Asking, progress: FillProgress) => {
    entry.listener?.(progress);
    if (over(progress)) drop(digest, entry);
  };
  channel.on('fill.progress', (body) => {
    const note = body as ProgressNote;
    for (const entry of asking.get(note.digest) ?? []) {
      if (entry.fill === null) entry.heard.push(note);
      else if (entry.fill === note.fill) deliver(note.digest, entry, note.progress);
    }
  });
  const ask = async (topic: string, digest: string): Promise<{ answer: ClaimAnswer | null; entry: Asking }> => {
    const entry: Asking = { fill: null, heard: [], listener: null };
    asking.set(digest, (asking.get(digest) ?? new Set()).add(entry));
    const answer = await channel.request<ClaimAnswer | null>(topic, { digest });
    if (!answer || answer.lead) drop(digest, entry);
    else entry.fill = answer.fill;
    return { answer, entry };
  };
  const following = (digest: string, entry: Asking, answer: Extract<ClaimAnswer, { lead: false }>): FollowedClaim => {
    // Notes heard before the answer, of this fetch only (the primary sends them just before it).
    const heard = entry.heard.filter((note) => note.fill === answer.fill).map((note) => note.progress);
    entry.heard = [];
    if (over(answer.progress)) drop(digest, entry);
    return {
      lead: false,
      progress: answer.progress,
      follow(listener) {
        entry.listener = listener;
        for (const progress of heard) deliver(digest, entry, progress);
      },
    };
  };
  return {
    async claim(digest) {
      const { answer, entry } = await ask('fill.claim', digest);
      if (!answer!.lead) return following(digest, entry, answer!);
      return { lead: true, publish: (progress) => channel.tell('fill.progress', { digest, fill: answer!.fill, progress } satisfies ProgressNote) };
    },
    async follow(digest) {
      const { answer, entry } = await ask('fill.follow', digest);
      return answer && !answer.lead ? following(digest, entry, answer) : null;
    },
  };
}
