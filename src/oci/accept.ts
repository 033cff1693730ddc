// Content negotiation for manifest GET/HEAD. Clients send Accept as several header lines in any
// order (Node joins them with ", "); quality values are ignored, as Distribution does.

export interface AcceptedTypes {
  /** True when the client named no type, or a wildcard: it takes whatever is stored. */
  readonly any: boolean;
  readonly types: ReadonlySet<string>;
}

// Parsed headers by their text: a registry's clients send a handful of distinct Accept headers,
// and a lookup costs less than the splitting, trimming and Set building of a parse. Bounded in
// entries and in the length of a header it keeps (longer ones are parsed each time); emptied
// when full. What it holds is never changed (the types are read only), so entries are shared.
const parsed = new Map<string, AcceptedTypes>();
export const acceptCacheLimits = { entries: 256, headerLength: 1024 } as const;

/** How many parsed headers are kept now (for tests of the bound). */
export function cachedAcceptHeaders(): number {
  return parsed.size;
}

const anything: AcceptedTypes = { any: true, types: new Set() };

function parse(header: string): AcceptedTypes {
  const types = new Set<string>();
  let any = false;
  for (const part of header.split(',')) {
    const type = part.split(';')[0]!.trim().toLowerCase();
    if (type === '*/*' || type === 'application/*') any = true;
    else if (type) types.add(type);
  }
  return { any: any || types.size === 0, types };
}

export function parseAccept(header: string | undefined): AcceptedTypes {
  if (!header) return anything;
  let accepted = parsed.get(header);
  if (accepted === undefined) {
    accepted = parse(header);
    if (header.length <= acceptCacheLimits.headerLength) {
      if (parsed.size >= acceptCacheLimits.entries) parsed.clear();
      parsed.set(header, accepted);
    }
  }
  return accepted;
}

export function accepts(accepted: AcceptedTypes, mediaType: string): boolean {
  return accepted.any || accepted.types.has(mediaType);
}
