import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import type { Checksummer } from './checksum.js';

export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

/** Feeds the first `length` bytes of a file to a checksum (the part a resumed download already has). */
export async function hashPrefix(path: string, length: number, sum: Checksummer, signal: AbortSignal): Promise<void> {
  if (length === 0) return;
  const rs = createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20, signal });
  for await (const chunk of rs) sum.update(chunk as Buffer);
}
