import type { Http2Bindings, HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Access } from '../auth/access.js';

export type Env = { Bindings: HttpBindings | Http2Bindings; Variables: { cache?: string; user?: string; access?: Access | null } };
export type Ctx = Context<Env>;

/** Sent on every response (distribution-spec: clients check it on GET /v2/). */
export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;
