import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

// Benchmark payloads: random files made once under bench/.payload/ (git-ignored) and reused.

export const payloadDir = fileURLToPath(new URL('../../bench/.payload/', import.meta.url));

export interface Payload {
  path: string;
  size: number;
  digest: string;
  /** Bytes sent instead of the file's first ones (a fresh blob from the same file: freshBlob). */
  head?: Buffer;
}

async function sha256File(path: string, head?: Buffer): Promise<string> {
  const hash = createHash('sha256');
  if (head) hash.update(head);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, start: head?.length ?? 0 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The payload with its first 16 bytes replaced by random ones: a blob no server has seen, so each
 * push run stores new content (a registry that already holds a blob may drop the upload's copy
 * without writing it out; Wharf does, skipping its fsync) while the bytes still come from the file.
 */
export async function freshBlob(blob: Payload): Promise<Payload> {
  const head = randomBytes(16);
  return { ...blob, head, digest: await sha256File(blob.path, head) };
}

/** A random file of `size` bytes (streamed to disk, never held whole in memory). */
export async function payload(name: string, size: number): Promise<Payload> {
  await mkdir(payloadDir, { recursive: true });
  const path = join(payloadDir, name);
  const digestFile = `${path}.digest`;
  if (!existsSync(path) || !existsSync(digestFile)) {
    await pipeline(async function* () {
      for (let written = 0; written < size; written += 1 << 20) yield randomBytes(Math.min(1 << 20, size - written));
    }, createWriteStream(path));
    await writeFile(digestFile, await sha256File(path));
  }
  return { path, size, digest: (await readFile(digestFile, 'utf8')).trim() };
}

/** A payload with fixed content (a config blob), written next to the random ones. */
export async function fixedPayload(name: string, bytes: Buffer): Promise<Payload> {
  await mkdir(payloadDir, { recursive: true });
  const path = join(payloadDir, name);
  await writeFile(path, bytes);
  return { path, size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}
