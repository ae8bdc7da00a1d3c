// Writing a reply's body into a download's part file: streamed (checksummed and counted as it
// comes, flushed behind), or gathered and written at once when small; guarded against more bytes
// than announced and a filling disk.
import { createWriteStream, fsync, write, writev } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { PetrelError } from '../errors.js';
import type { Checksummer } from './checksum.js';
import { diskFull, spaceAt, type SpaceCheck } from './disk-space.js';
import { localError, networkError } from './errors.js';
import type { HttpResponse } from './http.js';
import { createWriteBehind } from './local-file.js';
import { createTap } from './stream-tap.js';

const syncFd = promisify(fsync);
const writevFd = (fd: number, chunks: Buffer[], position: number): Promise<number> =>
  new Promise((resolve, reject) => writev(fd, chunks, position, (e, n) => (e ? reject(e) : resolve(n))));

/** At most this often, in bytes written, a streaming download looks at the free space. */
const SPACE_CHECK_EVERY = 8 << 20;
/** What may be counted but not yet written: the tap's and the file stream's buffers (1 MiB each). */
const IN_FLIGHT = 2 << 20;

/** Makes what was written to the part file durable. */
export async function syncPart(fd: number, part: string): Promise<void> {
  await syncFd(fd).catch((e: unknown) => {
    throw localError(e, part, 'writing');
  });
}

/** Replies up to this size are gathered and written in one call: for a small file, a write stream costs more than its data. */
const GATHER_LIMIT = 1 << 20;

/** Writes all of `chunks` at the start of the file, however many calls the kernel needs. */
async function writeAll(fd: number, chunks: Buffer[]): Promise<void> {
  let rest = chunks;
  let position = 0;
  while (rest.length) {
    const n = await writevFd(fd, rest, position);
    if (n === 0) throw new Error('the file system accepted no bytes');
    position += n;
    let left = n;
    while (rest.length && left >= (rest[0] as Buffer).length) left -= (rest.shift() as Buffer).length;
    if (left > 0) rest = [(rest[0] as Buffer).subarray(left), ...rest.slice(1)];
  }
}

/** A small reply, read whole, checksummed and counted as it comes, then written and fsynced. */
async function writeGathered(res: HttpResponse, fd: number, url: URL, part: string, sum: Checksummer | undefined, onBytes: (n: number) => void): Promise<void> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      sum?.update(chunk);
      chunks.push(chunk);
      onBytes(chunk.length);
    }
  } catch (e) {
    throw networkError(e, url);
  }
  await writeAll(fd, chunks).catch((e: unknown) => {
    throw localError(e, part, 'writing');
  });
  await syncPart(fd, part);
}

/**
 * The write stream's file calls, but for close: the descriptor is the caller's. pipeline()
 * destroys the stream when the transfer fails or is cancelled, and a destroyed WriteStream closes
 * its descriptor even with `autoClose: false`; the caller's own close then hit whatever had taken
 * that number meanwhile, a socket say, and libuv aborted the agent (SIGABRT in epoll_ctl).
 */
const KEEP_DESCRIPTOR = { write, writev, close: (_fd: number, done: (e: NodeJS.ErrnoException | null) => void) => done(null) };

export interface BodyWriteOptions {
  /** fsync when the body is written (default); not for one range of several, synced once at the end. */
  sync?: boolean;
  /** Hears, once the stream is done or torn down, how many bytes reached the file from `offset` on. */
  written?: (bytes: number) => void;
}

/** Streams a reply into the part file from `offset` on, checksumming and counting, then fsyncs it. */
export async function writeBody(
  res: HttpResponse,
  fd: number,
  offset: number,
  size: number | null,
  url: URL,
  part: string,
  sum: Checksummer | undefined,
  onBytes: (n: number) => void,
  guard: (n: number) => Promise<void> | undefined,
  opts: BodyWriteOptions = {},
): Promise<void> {
  if (offset === 0 && size !== null && size <= GATHER_LIMIT) return writeGathered(res, fd, url, part, sum, onBytes);
  let localFailure: unknown;
  let networkFailure: unknown;
  // pipeline() hands the reply's error on to the file stream, which emits it too: that one is not the file's.
  res.body.once('error', (e) => (networkFailure ??= e));
  const out = createWriteStream('', { fd, start: offset, highWaterMark: 1 << 20, autoClose: false, fs: KEEP_DESCRIPTOR });
  out.on('error', (e) => {
    if (e !== networkFailure) localFailure ??= e;
  });
  const writeBehind = createWriteBehind(fd);
  try {
    const tap = createTap(
      sum,
      (n) => {
        writeBehind.wrote(n);
        onBytes(n);
      },
      guard,
    );
    await pipeline(res.body, tap, out);
    await writeBehind.settle();
    opts.written?.(out.bytesWritten);
  } catch (e) {
    // What failed first: the file, or (else) the network, whose error the torn-down file stream repeats later.
    const local = localFailure;
    await writeBehind.settle();
    // The descriptor is closed by the caller: not while a write of the torn-down stream is in flight.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    opts.written?.(out.bytesWritten);
    if (local) throw localError(local, part, 'writing');
    // The guard's own verdict (too many bytes, no space) is a PetrelError: networkError passes it on.
    throw networkError(e, url);
  }
  if (opts.sync !== false) await syncPart(fd, part);
}

/** Often enough that a small reserve is not overrun between two looks at the free space. */
const spaceCheckStep = (reserve: number) => Math.min(SPACE_CHECK_EVERY, Math.max(64 << 10, Math.floor(reserve / 4)));

/**
 * Checks each chunk of a streamed body against what may be written: no more than `limit` bytes
 * (the size announced, or the bound on unknown sizes), and, every few MB, the free space. With
 * `looked`, the space the caller has just found for the whole body, the first look waits a step.
 */
export function createGuard(
  url: URL,
  part: string,
  offset: number,
  limit: { bytes: number; known: boolean },
  reserve: number | undefined,
  looked?: SpaceCheck,
): (n: number) => Promise<void> | undefined {
  let written = offset;
  let nextCheck = looked ? offset + spaceCheckStep(looked.reserve) : offset;
  return (n) => {
    written += n;
    if (written > limit.bytes) {
      throw limit.known
        ? new PetrelError('TRANSFER_PROTOCOL', `GET ${url.href}: the server sent more than the ${limit.bytes} bytes it announced`, { hint: 'tell the storage operators; nothing was kept' })
        : new PetrelError('TRANSFER_PROTOCOL', `GET ${url.href}: the server announced no size and sent more than ${limit.bytes} bytes`, {
            hint: 'if the file really is that large, raise maxUnknownSizeBytes in config.json and run `petrel job retry <id>`',
          });
    }
    if (written < nextCheck) return undefined;
    return spaceAt(dirname(part), reserve).then((space) => {
      nextCheck = written + spaceCheckStep(space.reserve);
      if (space.available - IN_FLIGHT < space.reserve) throw diskFull(part, undefined, space);
    });
  };
}

