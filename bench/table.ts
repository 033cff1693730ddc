// The benchmark table: one row per measure, Wharf next to its anchors, and Wharf/anchor ratios.

export interface Row {
  label: string;
  unit: string;
  target: string;
  values: Record<string, number>;
  p99?: Record<string, number>;
  mbps?: Record<string, number>;
}

const anchors = ['Wharf 1 worker', 'Distribution', 'upstream direct', 'Node floor', 'nginx', 'node:http', 'Hono floor', 'Wharf plain', 'Wharf, auth off', 'Wharf SQLite+fs', 'Wharf idle', 'Wharf redirect', 'Wharf local member'];

function format(value: number | undefined): string {
  if (value === undefined) return '–';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : String(Number(value.toPrecision(3)));
}

/** Whether Wharf's figure meets one target (">= 0.9x nginx", "<= 1.0x Distribution (…)", "exactly 1"); null if it cannot say. */
function meets(row: Row, target: string): boolean | null {
  const wharf = row.values.Wharf;
  const exactly = /^exactly ([\d.]+)/.exec(target);
  if (wharf === undefined) return null;
  if (exactly) return wharf === Number(exactly[1]);
  const bound = /^(>=|<=) ([\d.]+)x (.+?)( \(.*\))?$/.exec(target);
  const anchor = bound ? row.values[bound[3]!] : undefined;
  if (!bound || !anchor) return null;
  const ratio = Number((wharf / anchor).toFixed(2)); // as the ratio column shows it
  return bound[1] === '>=' ? ratio >= Number(bound[2]) : ratio <= Number(bound[2]);
}

/** The target column: each of the row's targets ("; " between them), with met or missed where the figures decide it. */
function targets(row: Row): string {
  return row.target.split('; ').map((target) => {
    const met = meets(row, target);
    return met === null ? target : `${target}: ${met ? 'met' : 'missed'}`;
  }).join('; ');
}

function cell(row: Row, server: string): string {
  const value = row.values[server];
  if (value === undefined) return '–';
  const extras = [
    row.p99?.[server] !== undefined ? `p99 ${format(row.p99[server])} ms` : '',
    row.mbps?.[server] !== undefined && row.mbps[server]! >= 1 ? `${format(row.mbps[server])} MB/s` : '',
  ].filter(Boolean);
  return `${format(value)}${row.unit ? ` ${row.unit}` : ''}${extras.length ? ` (${extras.join(', ')})` : ''}`;
}

export function renderTable(rows: Row[], info: { peakRssMiB: number; runs: number; seconds: number; notes?: string[] }): string {
  // The anchors this run measured.
  const columns = anchors.filter((a) => rows.some((row) => row.values[a] !== undefined));
  const header = ['measure', 'Wharf', ...columns, 'Wharf / anchor', 'target'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) {
    const wharf = row.values.Wharf!;
    const ratios = columns.filter((a) => row.values[a]).map((a) => `${(wharf / row.values[a]!).toFixed(2)}x ${a}`);
    lines.push(`| ${[row.label, cell(row, 'Wharf'), ...columns.map((a) => cell(row, a)), ratios.join(', '), targets(row)].join(' | ')} |`);
  }
  lines.push('');
  if (info.peakRssMiB > 0) lines.push(`Wharf peak RSS while serving four 1 GiB streams: ${info.peakRssMiB.toFixed(0)} MiB (target < 150 MiB: ${info.peakRssMiB < 150 ? 'met' : 'missed'}).`);
  lines.push('Blob rows: nginx sends the very file Wharf stores; every measured run starts with the file it reads read through once; CPU rows count utime + stime of the serving processes (workers included) during the run, per GB sent.');
  lines.push('Rows starting "offload:" are Wharf with proxy.offload behind the nginx site it generates (X-Accel-Redirect), against the same nginx sending the file directly over HTTPS with the same certificate (medians of at least 7 runs).');
  lines.push('Rows starting "TLS:" are Wharf\'s self-signed HTTPS listener against its own plain HTTP and nginx terminating TLS with the same certificate.');
  lines.push('Rows starting "auth:" are Wharf with access control on (a bearer token, or Basic credentials, on every request) against the same build with auth: { enabled: false }; the token endpoint rows have no anchor.');
  lines.push('Rows starting "remote:" compare Wharf\'s remote repository with Distribution configured as a pull-through proxy of the same origin, and with the Node floor (bench/floor-proxy.ts: hash, temp file and client, nothing else) on the cold rows (the 20-concurrent rows are one run each).');
  lines.push('Rows starting "storage:" run the collector in the server over seeded metadata (the idle column is the same GET loop without it), and Wharf on PostgreSQL 15 + S3 (s3rver, npm) next to SQLite + filesystem.');
  lines.push(...(info.notes ?? []));
  lines.push(`Medians of ${info.runs} runs (${info.seconds} s each for request rates), ${new Date().toISOString().slice(0, 10)}, on this 2-core machine; load generator and servers share the cores.`);
  return lines.join('\n');
}
