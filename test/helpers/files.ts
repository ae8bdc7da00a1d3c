import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { checksumOf } from '../../src/transfer/checksum.js';

/** sha256 of a file, streamed (files here reach 1 GiB). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function adler32Of(data: Buffer): string {
  return checksumOf('adler32', data);
}

/** Names in a directory that are partial downloads. */
export async function partFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.petrel-part'));
}

/** A reply body as JSON, or undefined when it is not JSON (error pages, empty bodies). */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
