import { ftruncate } from 'node:fs';
import { promisify } from 'node:util';
import { PetrelError } from '../errors.js';
import { createGuard, syncPart, writeBody } from './body-writer.js';
import { combineDigests, createChecksummer, isCombinable, type ChecksumAlgorithm } from './checksum.js';
import { httpError, localError } from './errors.js';
import { bodyText, header, type HttpClient, type HttpResponse } from './http.js';
import { requestRange } from './range-request.js';
import type { PartFile } from './part-file.js';
import { RangeFailure, type RangeOutcome, type RangeWorkers, type ReservedWorkers, type RunningRange } from './range-workers.js';
import type { TransferTask } from './task.js';

const truncateFd = promisify(ftruncate);
const MiB = 1 << 20;

/**
 * How large downloads are split: at most `streams` at once, each at least `minStreamBytes`, when
 * the server is at least `minRoundTripMs` away (the first reply's head took that long).
 */
export interface StreamSettings {
  streams: number;
  minStreamBytes: number;
  minRoundTripMs: number;
}

/** What a download needs to fetch in ranges: the split, and the threads that run all streams but the first. */
export interface RangedDownloads extends StreamSettings {
  workers: RangeWorkers;
}

export interface ByteRange {
  start: number;
  /** Exclusive. */
  end: number;
}

/** `total` bytes in ranges of whole MiB for up to `streams` streams, none shorter than `minStreamBytes` (the last may be). */
export function splitRanges(total: number, s: Pick<StreamSettings, 'streams' | 'minStreamBytes'>): ByteRange[] {
  const count = Math.max(1, Math.min(s.streams, Math.floor(total / Math.max(1, s.minStreamBytes))));
  const step = Math.ceil(total / count / MiB) * MiB;
  const ranges: ByteRange[] = [];
  for (let start = 0; start < total; start += step) ranges.push({ start, end: Math.min(total, start + step) });
  return ranges;
}

/** The workers for a download of `total` bytes in ranges, or nothing when it goes as one stream. */
export function reserveStreams(ranged: RangedDownloads | undefined, first: HttpResponse, total: number, algo: ChecksumAlgorithm | undefined): { ranges: ByteRange[]; workers: ReservedWorkers } | undefined {
  if (!ranged || ranged.streams < 2) return undefined;
  // A server this close fills one connection as fast as a core can read it: more streams only
  // spread the same CPU over more threads (measured on loopback: README, Benchmarks).
  if (first.waitedMs < ranged.minRoundTripMs) return undefined;
  // md5 cannot be put together from the digests of pieces: such a download goes as one stream.
  if (algo && !isCombinable(algo)) return undefined;
  const ranges = splitRanges(total, ranged);
  if (ranges.length < 2) return undefined;
  // No idle worker: other downloads keep the cores busy, one more stream would not help.
  const workers = ranged.workers.reserve(ranges.length - 1);
  return workers ? { ranges, workers } : undefined;
}

export interface RangedFetch {
  client: HttpClient;
  task: TransferTask;
  /** Where the ranges are asked for: the URL that answered the first GET, after its redirects. */
  url: URL;
  /** The job's token if `url` is on the origin it was meant for, else none. */
  token: string | null;
  part: PartFile;
  total: number;
  ranges: ByteRange[];
  workers: ReservedWorkers;
  algo: ChecksumAlgorithm | undefined;
  diskReserveBytes: number | undefined;
  /** The worker threads' ranges come straight off TLS connections (direct-range.ts). */
  direct: boolean;
  signal: AbortSignal;
  onBytes(n: number): void;
}

/** A server that ignored the Range header: its whole reply, to be read as one stream. */
export type RangedResult = { digest: string | undefined } | { whole: HttpResponse };

/**
 * Fetches the file as closed ranges at once: the first on this thread (a streamed body, like a
 * single-stream download), the others on worker threads, each writing its own part of the part
 * file and checksumming it; the digests are combined. When a stream fails the others stop, and
 * the part file is cut to what was written without a gap, so a retry resumes from there.
 */
export async function fetchInRanges(f: RangedFetch): Promise<RangedResult> {
  const first = f.ranges[0] as ByteRange;
  const local = new AbortController();
  const stop = () => local.abort();
  f.signal.addEventListener('abort', stop, { once: true });
  const running: RunningRange[] = [];
  try {
    const res = await requestRange(f.client, { url: f.url, token: f.token, headers: f.task.headers, signal: local.signal, start: first.start, end: first.end, total: f.total });
    if (res.status === 200) return { whole: res };
    if (res.status !== 206) throw httpError('GET', f.url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
    for (const r of f.ranges.slice(1)) {
      running.push(
        f.workers.run(
          { url: f.url.href, token: f.token, headers: f.task.headers ?? {}, allowInsecureRedirect: f.client.allowInsecureRedirect ?? false, fd: f.part.fd, path: f.part.path, start: r.start, end: r.end, total: f.total, algo: f.algo, direct: f.direct },
          f.onBytes,
        ),
      );
    }
    const sum = f.algo ? createChecksummer(f.algo) : undefined;
    let firstWritten = 0;
    const own: Promise<RangeOutcome> = writeBody(res, f.part.fd, 0, first.end, f.url, f.part.path, sum, f.onBytes, createGuard(f.url, f.part.path, 0, { bytes: first.end, known: true }, f.diskReserveBytes), {
      sync: false,
      written: (n) => (firstWritten = n),
    }).then(() => ({ written: first.end, digest: sum?.digest() }));
    let failure: unknown;
    const outcomes = [own, ...running.map((r) => r.outcome)];
    for (const o of outcomes) {
      o.catch((e: unknown) => {
        failure ??= e;
        local.abort();
        for (const r of running) r.abort();
      });
    }
    const settled = await Promise.allSettled(outcomes);
    if (failure !== undefined) {
      const written = settled.map((s, i) => (s.status === 'fulfilled' ? s.value.written : i === 0 ? firstWritten : s.reason instanceof RangeFailure ? s.reason.written : 0));
      await truncateFd(f.part.fd, gaplessLength(f.ranges, written)).catch((e: unknown) => {
        throw localError(e, f.part.path, 'writing');
      });
      // Streams torn down by the cancel fail in their own words (a reset, an abort): it was the cancel.
      if (f.signal.aborted) throw new PetrelError('TRANSFER_CANCELLED', `GET ${f.url.href} cancelled`);
      throw failure;
    }
    await syncPart(f.part.fd, f.part.path);
    const digests = settled.map((s) => (s as PromiseFulfilledResult<RangeOutcome>).value.digest);
    return { digest: f.algo && isCombinable(f.algo) ? combineAll(f.algo, f.ranges, digests) : undefined };
  } finally {
    f.signal.removeEventListener('abort', stop);
    f.workers.release();
  }
}

/** How much of the file is written from its start without a gap, given what each range wrote. */
export function gaplessLength(ranges: ByteRange[], written: number[]): number {
  let length = 0;
  for (const [i, r] of ranges.entries()) {
    const w = written[i] ?? 0;
    length += w;
    if (w < r.end - r.start) break;
  }
  return length;
}

function combineAll(algo: 'adler32' | 'crc32c', ranges: ByteRange[], digests: (string | undefined)[]): string {
  let whole = digests[0] as string;
  for (let i = 1; i < ranges.length; i++) {
    const r = ranges[i] as ByteRange;
    whole = combineDigests(algo, whole, digests[i] as string, r.end - r.start);
  }
  return whole;
}
