import { readdir, readFile, readlink } from 'node:fs/promises';

// Which worker of `wharf serve` (workers > 1) serves a connection: the workers are the primary's
// children; a connection's server end is a socket in /proc/net/tcp that one of them holds open.

/** The worker processes: the primary's children. */
export async function workerPids(primary: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(primary)) found.push(Number(entry));
  }
  return found;
}

/** The worker holding the server's end of the loopback connection from `clientPort` to `serverPort`; null when none does. */
export async function workerServing(primary: number, { serverPort, clientPort }: { serverPort: number; clientPort: number }): Promise<number | null> {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').map((line) => line.trim().split(/\s+/));
  const row = rows.find((columns) => columns[1]?.endsWith(`:${hex(serverPort)}`) && columns[2]?.endsWith(`:${hex(clientPort)}`));
  if (!row) return null;
  for (const pid of await workerPids(primary)) {
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
      if (await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '') === `socket:[${row[9]}]`) return pid;
    }
  }
  return null;
}
