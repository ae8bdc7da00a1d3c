import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { KIND_SIDES } from '../domain.js';
import { createChecksummer, isChecksumAlgorithm } from './checksum.js';
import { contentLength, discard, send, type HttpClient } from './http.js';
import { remoteDigest } from './remote-digest.js';
import type { TransferTask } from './task.js';

/** What one side of a transfer holds now: its size, and a checksum on demand; undefined when nothing is there. */
interface Held {
  size: number;
  checksum(algo: string): Promise<string | undefined>;
}

async function localHeld(path: string): Promise<Held | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  return {
    size: info.size,
    async checksum(algo) {
      if (!isChecksumAlgorithm(algo)) return undefined;
      const c = createChecksummer(algo);
      for await (const chunk of createReadStream(path)) c.update(chunk as Buffer);
      return c.digest();
    },
  };
}

async function remoteHeld(client: HttpClient, url: URL, token: string | null, signal: AbortSignal): Promise<Held | undefined> {
  const res = await send(client, { method: 'HEAD', url, token, signal });
  await discard(res.body);
  if (res.status === 404) return undefined;
  const size = contentLength(res.headers);
  if (res.status !== 200 || size === undefined) return undefined;
  return { size, checksum: (algo) => (isChecksumAlgorithm(algo) ? remoteDigest(client, url, token, algo, signal, size) : Promise.resolve(undefined)) };
}

/**
 * --skip-existing: whether the destination already holds the source's file: the same size, and
 * the same checksum when the job verifies one and both sides report it. A side that cannot be
 * looked at counts as different (the transfer then runs and says what is wrong).
 */
export async function sameAtDestination(client: HttpClient, task: TransferTask, signal: AbortSignal): Promise<{ size: number } | undefined> {
  const sides = KIND_SIDES[task.kind];
  const look = (where: 'source' | 'destination', text: string, token: string | null) =>
    (where === 'source' ? sides.source : sides.destination)?.location === 'local' ? localHeld(text) : remoteHeld(client, new URL(text), token, signal);
  try {
    const [source, destination] = await Promise.all([look('source', task.source, task.sourceToken ?? task.token), look('destination', task.destination, task.token)]);
    if (!source || !destination || source.size !== destination.size) return undefined;
    if (task.checksum !== 'none') {
      const [a, b] = await Promise.all([source.checksum(task.checksum), destination.checksum(task.checksum)]);
      if (a !== undefined && b !== undefined && a !== b) return undefined;
    }
    return { size: source.size };
  } catch {
    return undefined;
  }
}
