import type { Http2Bindings, HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

export type Env = { Bindings: HttpBindings | Http2Bindings; Variables: { cache?: string } };
export type Ctx = Context<Env>;

/** Sent on every response (distribution-spec: clients check it on GET /v2/). */
export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;
