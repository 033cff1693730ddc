// Content negotiation for manifest GET/HEAD. Clients send Accept as several header lines in any
// order (Node joins them with ", "); quality values are ignored, as Distribution does.

export interface AcceptedTypes {
  /** True when the client named no type, or a wildcard: it takes whatever is stored. */
  any: boolean;
  types: ReadonlySet<string>;
}

export function parseAccept(header: string | undefined): AcceptedTypes {
  if (!header) return { any: true, types: new Set() };
  const types = new Set<string>();
  let any = false;
  for (const part of header.split(',')) {
    const type = part.split(';')[0]!.trim().toLowerCase();
    if (type === '*/*' || type === 'application/*') any = true;
    else if (type) types.add(type);
  }
  return { any: any || types.size === 0, types };
}

export function accepts(accepted: AcceptedTypes, mediaType: string): boolean {
  return accepted.any || accepted.types.has(mediaType);
}
