import type { Http2Bindings, HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Access } from '../auth/access.js';
import type { OffloadSettings } from './offload.js';

/** What handlers note about a request for its access-log line and metrics (observe.ts reads them at the end). */
export interface RequestNotes {
  /** How a cache answered (HIT, MISS, JOIN, STALE), for the access log. */
  cache?: string;
  /** The repository key routing resolved. */
  repository?: string;
  /** The OCI endpoint kind dispatch parsed (manifest, blob, …), for metrics. */
  endpoint?: string;
  /** The authenticated user, set by access control. */
  user?: string;
}

export type Env = {
  /** The adapter's incoming and outgoing, and the request's notes (app.ts adds them before Hono runs). */
  Bindings: (HttpBindings | Http2Bindings) & { notes: RequestNotes };
  Variables: {
    /** What the caller may do, set by access control. */
    access?: Access | null;
    /** With proxy.offload, on registry requests: how blob GETs may be handed to the proxy. */
    offload?: OffloadSettings;
  };
};
export type Ctx = Context<Env>;

/** Sent on every response (distribution-spec: clients check it on GET /v2/). */
export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;
