import { dirname } from 'node:path';
import { PetrelError } from '../errors.js';
import { createChecksummer, type Checksummer } from './checksum.js';
import { remoteDigest } from './remote-digest.js';
import { httpError, localError } from './errors.js';
import { createGuard, syncPart, writeBody } from './body-writer.js';
import { directReadable, readRangeDirect } from './direct-range.js';
import { fetchInRanges, reserveStreams, type RangedDownloads } from './ranged-get.js';
import { bodyText, contentLength, contentRange, discard, header, send, type HttpClient, type HttpResponse } from './http.js';
import { renameDurably } from '../durable.js';
import { closePart, hashPart, openPartFile, publishPart, removePart, type PartFile } from './part-file.js';
import { ensureRoom, type SpaceCheck } from './disk-space.js';
import { verifyChecksum } from './verify.js';
import type { TransferContext, TransferResult, TransferTask } from './task.js';


/** What a download may write: a bound on bodies of unknown size, and the free space it must leave. */
export interface DownloadLimits {
  /** A body without Content-Length (and no size known from a HEAD) fails past this. */
  maxUnknownSizeBytes: number;
  /** Free space left on the destination's file system; default: 1% of it, at most 1 GiB. */
  diskReserveBytes?: number | undefined;
  /** Large files in several ranges at once (absent: one stream). */
  ranged?: RangedDownloads | undefined;
  /** An https download with at least this many bytes to go bypasses node:https (direct-range.ts); 0: never. */
  directMinBytes?: number | undefined;
}

export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = { maxUnknownSizeBytes: 100 * 2 ** 30, directMinBytes: 64 << 20 };


const sizeOf = (res: HttpResponse): number | null => contentLength(res.headers) ?? null;

/** Whether the rest of a download (`rest` bytes) comes straight off a TLS connection (direct-range.ts), not through node:https. */
function goesDirect(res: HttpResponse, rest: number, limits: DownloadLimits): boolean {
  const min = limits.directMinBytes ?? 0;
  return min > 0 && rest >= min && directReadable(res.url);
}

async function refuse(op: string, url: URL, res: HttpResponse): Promise<never> {
  throw httpError(op, url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
}

/** Where to start: the part file's size, if the server (HEAD) still has at least that much. */
async function resumeOffset(client: HttpClient, url: URL, task: TransferTask, have: number, signal: AbortSignal): Promise<{ offset: number; total: number | null }> {
  if (have === 0) return { offset: 0, total: null };
  const head = await send(client, { method: 'HEAD', url, token: task.token, headers: task.headers, signal });
  await discard(head.body);
  // XRootD's proxy cache (XCache) answers HEAD with 405: the size then comes from a one-byte range.
  if (head.status === 405 || head.status === 501) return rangeProbe(client, url, task, have, signal);
  if (head.status !== 200) return refuse('HEAD', url, head);
  const total = sizeOf(head);
  return total === null || have > total ? { offset: 0, total } : { offset: have, total };
}

/** The size from `Content-Range` of a GET for the first byte, for servers that refuse HEAD. */
async function rangeProbe(client: HttpClient, url: URL, task: TransferTask, have: number, signal: AbortSignal): Promise<{ offset: number; total: number | null }> {
  const res = await send(client, { method: 'GET', url, token: task.token, headers: { ...task.headers, Range: 'bytes=0-0' }, signal, lenientParser: true });
  await discard(res.body);
  if (res.status === 200) return { offset: 0, total: sizeOf(res) };
  if (res.status !== 206) return refuse('GET', url, res);
  const total = contentRange(res.headers)?.total ?? null;
  return total === null || have > total ? { offset: 0, total } : { offset: have, total };
}

/** GET from `offset` on: the whole file, or a closed range of the rest; no response when nothing is left. */
async function fetchBody(client: HttpClient, url: URL, task: TransferTask, offset: number, total: number | null, signal: AbortSignal): Promise<{ res: HttpResponse | null; offset: number }> {
  if (offset > 0 && total !== null) {
    if (offset === total) return { res: null, offset };
    // A closed range (XRootD 5.5 answers `bytes=N-` with an empty body) through a lenient parser
    // (its 206 replies end the Content-Range line with a bare LF).
    const res = await send(client, { method: 'GET', url, token: task.token, headers: { ...task.headers, Range: `bytes=${offset}-${total - 1}` }, signal, lenientParser: true });
    if (res.status === 206 && contentRange(res.headers)?.first === offset) return { res, offset };
    if (res.status === 200) return { res, offset: 0 }; // the server sent it all
    if (res.status !== 206) return refuse('GET', url, res);
    await discard(res.body); // a range we did not ask for: start over
  }
  // No Want-Digest here: XRootD 5.5.3 crashed (SIGSEGV) on GETs asking for checksums not yet
  // known, even one at a time; the digest comes by HEAD after the data (remoteDigest).
  const res = await send(client, { method: 'GET', url, token: task.token, headers: task.headers, signal });
  if (res.status !== 200) return refuse('GET', url, res);
  return { res, offset: 0 };
}

/**
 * Downloads into `<dest>.petrel-part` beside the destination (resuming what a part file holds),
 * compares the checksum computed while streaming with the server's, fsyncs and renames: a partial
 * file never appears at the destination path.
 */
export async function download(client: HttpClient, task: TransferTask, ctx: TransferContext, limits: DownloadLimits = DEFAULT_DOWNLOAD_LIMITS): Promise<TransferResult> {
  const url = new URL(task.source);
  const dest = task.destination;
  const algo = task.checksum === 'none' ? undefined : task.checksum;
  let sum: Checksummer | undefined = algo ? createChecksummer(algo) : undefined;
  // One descriptor for reading what is there, writing, the fsync and the rename's check (opening
  // a file costs a millisecond of kernel time on some file systems, which a job of thousands of
  // small files feels). A numeric descriptor: in Node 20, a FileHandle that fed a write stream
  // never answers sync(). A fresh download creates its part file, which also says there is
  // nothing to resume.
  const part: PartFile = await openPartFile(dest);
  // A part file this attempt created and never wrote to goes again if the attempt fails: a
  // refused or unreachable download leaves nothing beside its destination. A private one
  // (the usual name was taken by something not ours) is never resumed, so it always goes.
  let keep = !part.created;
  let done = 0;
  let total: number | null = null;
  let rangedDigest: string | undefined;
  try {
    const planned = part.created ? { offset: 0, total: null } : await resumeOffset(client, url, task, part.size, ctx.signal);
    // The part file is hashed before the request, so the reply does not sit unread meanwhile.
    if (planned.offset > 0 && sum) {
      await hashPart(part, planned.offset, sum, ctx.signal).catch((e: unknown) => {
        throw localError(e, part.path, 'reading');
      });
    }
    const { res, offset } = await fetchBody(client, url, task, planned.offset, planned.total, ctx.signal);
    if (offset === 0 && planned.offset > 0 && algo) sum = createChecksummer(algo); // the server sent it all again
    total = res && offset === 0 ? (sizeOf(res) ?? planned.total) : planned.total;
    done = offset;
    ctx.onProgress({ bytesDone: done, bytesTotal: total });
    if (res) {
      let looked: SpaceCheck | undefined;
      if (total !== null) {
        looked = await ensureRoom(dirname(part.path), total - offset, limits.diskReserveBytes).catch(async (e: unknown) => {
          await discard(res.body);
          throw e instanceof PetrelError ? e : localError(e, part.path, 'checking the free space for');
        });
      }
      const onBytes = (n: number) => {
        keep = !part.private;
        done += n;
        ctx.onProgress({ bytesDone: done, bytesTotal: total });
      };
      let whole: HttpResponse | undefined = res;
      const streams = offset === 0 && total !== null ? reserveStreams(limits.ranged, res, total, algo) : undefined;
      if (streams && total !== null) {
        // The first reply told the size: it goes, and the file comes again as ranges at once.
        res.body.destroy();
        const ranged = await fetchInRanges({
          client,
          task,
          url: res.url,
          token: res.url.origin === url.origin ? task.token : null,
          part,
          total,
          ...streams,
          algo,
          diskReserveBytes: limits.diskReserveBytes,
          direct: (limits.directMinBytes ?? 0) > 0,
          signal: ctx.signal,
          onBytes,
        });
        if ('whole' in ranged) whole = ranged.whole;
        else {
          whole = undefined;
          rangedDigest = ranged.digest;
        }
      }
      if (whole && total !== null && goesDirect(whole, total - offset, limits)) {
        // The reply told the size: it goes, and the rest comes again straight off a TLS connection.
        whole.body.destroy();
        const direct = await readRangeDirect({
          url: whole.url,
          token: whole.url.origin === url.origin ? task.token : null,
          headers: task.headers,
          start: offset,
          end: total,
          total,
          fd: part.fd,
          path: part.path,
          sum,
          onBytes,
          guard: createGuard(url, part.path, offset, { bytes: total, known: true }, limits.diskReserveBytes, looked),
          signal: ctx.signal,
          client,
        });
        if (direct) {
          // Declined before a byte was written: the same request again, through node:https.
          whole = (await fetchBody(client, url, task, offset, total, ctx.signal)).res ?? undefined;
          if (whole?.status === 200 && offset > 0) throw new PetrelError('TRANSFER_PROTOCOL', `GET ${url.href}: the server sent the whole file where it had sent the rest`, { transient: true });
        } else {
          whole = undefined;
          await syncPart(part.fd, part.path);
        }
      }
      if (whole) {
        const limit = total !== null ? { bytes: total, known: true } : { bytes: limits.maxUnknownSizeBytes, known: false };
        await writeBody(whole, part.fd, offset, total, url, part.path, sum, onBytes, createGuard(url, part.path, offset, limit, limits.diskReserveBytes, looked));
      }
    }
    if (total !== null && done !== total) {
      throw new PetrelError('TRANSFER_CONNECTION', `GET ${url.href}: the connection ended after ${done} of ${total} bytes`, { transient: true });
    }
    let checksum: TransferResult['checksum'];
    if (sum && algo) {
      const remote = await remoteDigest(client, url, task.token, algo, ctx.signal, total ?? done, { keepAlive: true });
      checksum = await verifyChecksum(task, algo, rangedDigest ?? sum.digest(), remote, () => removePart(part));
    }
    await publishPart(part, dest, renameDurably);
    return { bytesDone: done, bytesTotal: total ?? done, ...(checksum ? { checksum } : {}) };
  } catch (e) {
    // Bytes that broke a rule (more than announced, no room left) are not worth resuming.
    const broken = e instanceof PetrelError && (e.code === 'TRANSFER_DISK_FULL' || e.code === 'TRANSFER_PROTOCOL');
    if (!keep || broken) await removePart(part);
    throw e;
  } finally {
    await closePart(part);
  }
}
