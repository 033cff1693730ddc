import { readFile, writeFile } from 'node:fs/promises';

// Go clients (skopeo) resolve names through /etc/hosts only. A test that needs a name adds its
// own line, marked, and removes exactly that line again.

const hostsFile = '/etc/hosts';

export async function withHostEntries<T>(names: string[], work: () => Promise<T>): Promise<T> {
  const marker = `# wharf-test ${process.pid}`;
  const lines = names.map((name) => `127.0.0.1 ${name} ${marker}`);
  const original = await readFile(hostsFile, 'utf8');
  await writeFile(hostsFile, `${original.endsWith('\n') ? original : `${original}\n`}${lines.join('\n')}\n`);
  try {
    return await work();
  } finally {
    const current = await readFile(hostsFile, 'utf8');
    await writeFile(hostsFile, current.split('\n').filter((line) => !line.endsWith(marker)).join('\n'));
  }
}
