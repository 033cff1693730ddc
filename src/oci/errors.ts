// The OCI distribution-spec error codes (spec §"Error Codes") plus the ones Docker clients know
// (DENIED, UNAUTHORIZED, TOOMANYREQUESTS). One table: code → HTTP status and default message.
// Code below http/ throws RegistryError; http/ alone renders the JSON envelope.

const table = {
  BLOB_UNKNOWN: [404, 'blob unknown to registry'],
  BLOB_UPLOAD_INVALID: [400, 'blob upload invalid'],
  BLOB_UPLOAD_UNKNOWN: [404, 'blob upload unknown to registry'],
  DIGEST_INVALID: [400, 'provided digest did not match uploaded content'],
  MANIFEST_BLOB_UNKNOWN: [400, 'manifest references a manifest or blob unknown to registry'],
  MANIFEST_INVALID: [400, 'manifest invalid'],
  MANIFEST_UNKNOWN: [404, 'manifest unknown to registry'],
  NAME_INVALID: [400, 'invalid repository name'],
  NAME_UNKNOWN: [404, 'repository name not known to registry'],
  SIZE_INVALID: [400, 'provided length did not match content length'],
  UNAUTHORIZED: [401, 'authentication required'],
  DENIED: [403, 'requested access to the resource is denied'],
  UNSUPPORTED: [405, 'the operation is unsupported'],
  TOOMANYREQUESTS: [429, 'too many requests'],
  /** Requests refused before any endpoint reads them: malformed, headers over the limit, too slow. */
  REQUEST_INVALID: [400, 'malformed request'],
  REQUEST_HEADERS_TOO_LARGE: [431, 'request header fields too large'],
  REQUEST_TIMEOUT: [408, 'the request did not arrive in time'],
  /** Distribution's code for an n= that is not a count (tags/list, _catalog). */
  PAGINATION_NUMBER_INVALID: [400, 'invalid number of results requested'],
  /** RFC 4918 §11.5 Insufficient Storage: the registry's disk or object store is full. */
  STORAGE_FULL: [507, 'storage is full'],
  /** Distribution's errcode for a registry that cannot serve now (its database or object store out of reach): retry later. */
  UNAVAILABLE: [503, 'service unavailable'],
  /** Distribution's errcode for failures that are nobody's input: upstream outages, internal errors. */
  UNKNOWN: [500, 'unknown error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof table;

export interface RegistryErrorOptions {
  message?: string;
  detail?: unknown;
  /** Overrides the table's status where the spec asks for another one (416 on an out-of-order PATCH, 413 on an oversized manifest). */
  status?: number;
  /** Response headers that belong with the error (WWW-Authenticate, Content-Range, …). */
  headers?: Record<string, string>;
  /** The message or detail names configuration (an upstream, an allow pattern) where no address shows it: for administrators only. */
  configuration?: boolean;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;
  readonly configuration: boolean;

  constructor(code: ErrorCode, options: RegistryErrorOptions = {}) {
    super(options.message ?? table[code][1]);
    this.name = 'RegistryError';
    this.code = code;
    this.status = options.status ?? table[code][0];
    this.detail = options.detail ?? null;
    this.headers = options.headers ?? {};
    this.configuration = options.configuration ?? false;
  }

  /** The spec's body: {"errors":[{"code","message","detail"}]}. */
  toJSON(): { errors: { code: string; message: string; detail: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail }] };
  }
}
