import { formatLine, textValue, type LogFormat } from '../log/logger.js';
import type { RequestRecord } from './observe.js';

// One line per request, written when the response is over (so status and bytes are the real
// ones, streamed bodies included). Lines are gathered and written once per event-loop turn: at
// thousands of requests a second, one write per line would cost more than the request.
//
//   text: TIME info CLIENT USER "METHOD URL" STATUS BODY-BYTES-OUT MSms repo=KEY host=HOST agent="UA" in=BYTES [CACHE] [aborted]
//   json: {"time","level":"info","message":"request","client","user","method","url","status","bytesOut",…}
// USER is "-" until access control names one.

export type AccessLog = (record: RequestRecord) => void;

function line(format: LogFormat, record: RequestRecord): string {
  const r = { ...record, url: redactUrl(record.url) };
  const ms = Math.round(r.seconds * 10_000) / 10;
  if (format === 'json') {
    return formatLine('json', 'info', 'request', {
      client: r.client, user: r.user, method: r.method, url: r.url, status: r.status, bytesOut: r.bytesOut, bytesIn: r.bytesIn, ms,
      repository: r.repository, host: r.host, userAgent: r.userAgent, cache: r.cache, aborted: r.aborted,
    });
  }
  // Whatever a client sent is quoted or escaped, so no value can pass for another field.
  const url = r.url.replace(/["\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
  const text = `${textValue(r.client)} ${textValue(r.user ?? '-')} "${r.method} ${url}" ${r.status} ${r.bytesOut} ${ms}ms repo=${r.repository ?? '-'} ` +
    `host=${textValue(r.host ?? '-')} agent=${JSON.stringify(r.userAgent ?? '')} in=${r.bytesIn}`;
  return formatLine('text', 'info', `${text}${r.cache ? ` ${r.cache}` : ''}${r.aborted ? ' aborted' : ''}`);
}

/** Query parameters that can carry a secret (OAuth2 token requests, tokens in URLs): never logged. */
const secretParameters = /([?&](?:password|refresh_token|access_token|token|client_secret)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(secretParameters, '$1***') : url;
}

export function accessLog(format: LogFormat, write: (text: string) => void): AccessLog {
  let pending: string[] = [];
  const flush = () => {
    write(pending.join(''));
    pending = [];
  };
  return (record) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(line(format, record));
  };
}
