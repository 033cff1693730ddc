import { readdir, readFile } from 'node:fs/promises';

// What Linux's /proc says of a server under load: the CPU time of its processes (the process
// itself and every worker it started), the bytes it wrote, its resident memory.

/** /proc reports CPU times in USER_HZ ticks, 100 a second on Linux whatever the kernel's HZ. */
const ticksPerSecond = 100;

interface ProcessTimes {
  ppid: number;
  /** utime + stime + cutime + cstime: its own time and that of children it has reaped. */
  ticks: number;
  /** utime alone. */
  userTicks: number;
}

async function processTimes(pid: number): Promise<ProcessTimes | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!stat) return null;
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const field = (n: number) => fields[n - 3]!;
  return { ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17), userTicks: field(14) };
}

/** CPU seconds (user + system) used so far by `pid` and all its live descendants. */
export async function cpuSeconds(pid: number): Promise<number> {
  const all = new Map<number, ProcessTimes>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const times = await processTimes(Number(name));
    if (times) all.set(Number(name), times);
  }
  let ticks = 0;
  const queue = [pid];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    ticks += all.get(next)?.ticks ?? 0;
    for (const [child, times] of all) if (times.ppid === next) queue.push(child);
  }
  return ticks / ticksPerSecond;
}

/**
 * CPU seconds every process on the machine has used so far (busy time summed over all cores,
 * from /proc/stat: everything but idle and iowait), for work that is spread over several processes.
 */
export async function machineBusySeconds(): Promise<number> {
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user! + nice! + system! + irq! + softirq! + steal!) / ticksPerSecond;
}

/** User-mode CPU seconds of `pid` itself (utime): what a busy machine's scheduling and interrupts disturb least. */
export async function userSeconds(pid: number): Promise<number> {
  const times = await processTimes(pid);
  if (!times) throw new Error(`no process ${pid}`);
  return times.userTicks / ticksPerSecond;
}

/** Bytes `pid` has written so far, to files and sockets alike (/proc/<pid>/io wchar). */
export async function bytesWritten(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? NaN);
}

/** Resident set size of a process, in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples `pid`'s RSS every 50 ms while `work` runs; returns the work's result and the peak. */
export async function withPeakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = await rssMiB(pid);
  const timer = setInterval(() => {
    rssMiB(pid).then((value) => { peak = Math.max(peak, value); }, () => undefined);
  }, 50);
  try {
    return { result: await work(), peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}
