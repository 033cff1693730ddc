import { readFileSync } from 'node:fs';

/** Wharf's version, from the package.json it ships with (dist/src/ → package root). */
export const version: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
