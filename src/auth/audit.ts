// The audit trail: one line per login, push, delete, permission denial and user or token change,
// saying who, from where, what and with what result. Lines go to an injected writer (by default
// the operational log), so the log's formatting can take them over. Nothing secret is ever a
// field: callers pass names, addresses, repository paths and outcomes only.

export interface AuditEvent {
  /** The user name, "name/token:id", or "-" for anonymous. */
  who: string;
  /** Client address, or "cli" for the wharf command. */
  from: string;
  action: string;
  /** What it was done to: key/image:tag, a user name, a token id. */
  target?: string;
  /** error: the check could not be made (its database out of reach). */
  result: 'ok' | 'denied' | 'failed' | 'throttled' | 'error';
  reason?: string;
}

export type AuditWriter = (line: string) => void;

function field(value: string): string {
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

export function auditLine(event: AuditEvent): string {
  const parts = [`who=${field(event.who)}`, `from=${field(event.from)}`, `action=${field(event.action)}`];
  if (event.target !== undefined) parts.push(`target=${field(event.target)}`);
  parts.push(`result=${event.result}`);
  if (event.reason !== undefined) parts.push(`reason=${field(event.reason)}`);
  return `audit: ${parts.join(' ')}`;
}

export interface Audit {
  record(event: AuditEvent): void;
}

export function audit(write: AuditWriter): Audit {
  return { record: (event) => write(auditLine(event)) };
}
