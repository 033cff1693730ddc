import { closeSync, openSync, readSync } from 'node:fs';

// In WAL mode SQLite keeps the WAL-index in the database's -shm file, mapped by every connection of
// every process (its layout is in sqlite.org/walformat.html). Its header, which each commit
// rewrites (a change counter, the last frame, checksums), comes first: reading those 48 bytes is
// one pread, and comparing them with the copy read before says whether anyone committed since.
// A header caught mid-rewrite can only differ from the last one: it shows a change, never hides one.

const headerBytes = 48;

export interface CommitWatch {
  /** Whether a commit may have happened since the last call (true on the first, or without the file). */
  changed(): boolean;
  close(): void;
}

export function watchCommits(database: string): CommitWatch {
  let fd: number | null = null;
  let last = Buffer.alloc(headerBytes);
  let next = Buffer.alloc(headerBytes);
  let known = false;
  return {
    changed() {
      try {
        fd ??= openSync(`${database}-shm`, 'r');
        readSync(fd, next, 0, headerBytes, 0);
      } catch {
        known = false;
        return true;
      }
      const same = known && next.equals(last);
      [last, next] = [next, last];
      known = true;
      return !same;
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
