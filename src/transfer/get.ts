import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PetrelError } from '../errors.js';
import { createChecksummer, type ChecksumAlgorithm, type Checksummer } from './checksum.js';
import { serverDigest, wantDigestHeader } from './digest.js';
import { httpError, localError, networkError } from './errors.js';
import { bodyText, discard, header, send, type HttpClient, type HttpResponse } from './http.js';
import { nodeSend } from './node-request.js';
import { commitFile, fileSize, hashPrefix, removeFile, syncFile } from './local-file.js';
import { verifyChecksum } from './verify.js';
import { createTap } from './stream-tap.js';
import { partPath, type TransferContext, type TransferResult, type TransferTask } from './task.js';

function contentLength(res: HttpResponse): number | null {
  const v = header(res.headers, 'content-length');
  const n = v === undefined ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** `bytes 100-199/1000` → 100 */
function rangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

async function refuse(op: string, url: URL, res: HttpResponse): Promise<never> {
  throw httpError(op, url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
}

/**
 * XRootD 5.5 answers a request with `Want-Digest` for a missing file with 500 "failed to
 * calculate checksum" instead of 404: a HEAD without it tells the real, often permanent, reason.
 */
async function refuseGet(client: HttpClient, url: URL, task: TransferTask, res: HttpResponse, askedDigest: boolean, signal: AbortSignal): Promise<never> {
  if (askedDigest && res.status >= 500) {
    const said = await bodyText(res.body);
    const probe = await send(client, { method: 'HEAD', url, token: task.token, signal });
    await discard(probe.body);
    if (probe.status >= 400 && probe.status < 500) {
      const reason = probe.status === 404 ? 'no such file or directory' : probe.status === 403 ? 'permission denied' : 'refused';
      throw httpError('GET', url, probe.status, `${reason} (asked for a checksum, the server said ${res.status} ${said})`);
    }
    throw httpError('GET', url, res.status, said, header(res.headers, 'retry-after'));
  }
  return refuse('GET', url, res);
}

interface Plan {
  offset: number;
  total: number | null;
  expected?: string | undefined;
}

/** What a resumed download still needs: HEAD tells the size and digest, the part file what we have. */
async function planResume(client: HttpClient, url: URL, task: TransferTask, algo: ChecksumAlgorithm | undefined, have: number, signal: AbortSignal): Promise<Plan> {
  const head = await send(client, { method: 'HEAD', url, token: task.token, headers: algo ? { 'Want-Digest': wantDigestHeader(algo) } : {}, signal });
  await discard(head.body);
  if (head.status !== 200) {
    if (algo && head.status >= 500) return planResume(client, url, task, undefined, have, signal);
    return refuse('HEAD', url, head);
  }
  const total = contentLength(head);
  const expected = algo ? serverDigest(head.headers.digest, algo) : undefined;
  if (total === null || have > total) return { offset: 0, total, expected };
  return { offset: have, total, expected };
}

/**
 * Downloads into `<dest>.petrel-part` beside the destination (resuming it with a closed Range,
 * since XRootD 5.5 mishandles open-ended ones), checks the checksum computed while streaming,
 * fsyncs and renames: a partial file never appears at the destination path.
 */
export async function download(client: HttpClient, task: TransferTask, ctx: TransferContext): Promise<TransferResult> {
  const url = new URL(task.source);
  const dest = task.destination;
  const part = partPath(dest);
  const algo = task.checksum === 'none' ? undefined : task.checksum;
  const wantDigest: Record<string, string> = algo ? { 'Want-Digest': wantDigestHeader(algo) } : {};
  await mkdir(dirname(dest), { recursive: true }).catch((e: unknown) => {
    throw localError(e, dirname(dest), 'creating');
  });

  const have = await fileSize(part);
  let plan: Plan = have > 0 ? await planResume(client, url, task, algo, have, ctx.signal) : { offset: 0, total: null };
  const sum: Checksummer | undefined = algo ? createChecksummer(algo) : undefined;

  let res: HttpResponse | undefined;
  if (plan.offset > 0 && plan.total !== null && plan.offset < plan.total) {
    // A closed range (XRootD 5.5 answers `bytes=N-` with an empty body), no Want-Digest (the HEAD
    // gave the whole file's), and a lenient parser for XRootD's malformed 206 headers.
    res = await nodeSend(client, { method: 'GET', url, token: task.token, headers: { Range: `bytes=${plan.offset}-${plan.total - 1}` }, signal: ctx.signal, lenientParser: true });
    if (res.status !== 206 || rangeStart(res) !== plan.offset) {
      if (res.status !== 200) {
        if (res.status !== 206) return refuseGet(client, url, task, res, Boolean(algo), ctx.signal);
        await discard(res.body);
        res = undefined;
      }
      plan = { ...plan, offset: 0 }; // the server sent everything (or nonsense): start over
    }
  } else if (plan.offset === 0 || plan.total === null) {
    plan = { offset: 0, total: null };
  }
  if (plan.offset === 0 && !res) {
    res = await send(client, { method: 'GET', url, token: task.token, headers: wantDigest, signal: ctx.signal });
    if (res.status !== 200) return refuseGet(client, url, task, res, Boolean(algo), ctx.signal);
  }
  if (plan.offset === 0 && res) {
    plan = { offset: 0, total: contentLength(res), expected: algo ? serverDigest(res.headers.digest, algo) : undefined };
  }

  if (plan.offset > 0 && sum) {
    await hashPrefix(part, plan.offset, sum, ctx.signal).catch((e: unknown) => {
      throw localError(e, part, 'reading');
    });
  }

  let done = plan.offset;
  const total = plan.total;
  ctx.onProgress({ bytesDone: done, bytesTotal: total });
  if (res) {
    let localFailure: unknown;
    try {
      const out = createWriteStream(part, { flags: plan.offset > 0 ? 'r+' : 'w', start: plan.offset, highWaterMark: 1 << 20 });
      out.on('error', (e) => (localFailure ??= e));
      const tap = createTap(sum, (n) => {
        done += n;
        ctx.onProgress({ bytesDone: done, bytesTotal: total });
      });
      await pipeline(res.body, tap, out);
    } catch (e) {
      if (localFailure) throw localError(localFailure, part, 'writing');
      throw networkError(e, url);
    }
    await syncFile(part).catch((e: unknown) => {
      throw localError(e, part, 'writing');
    });
  }
  if (total !== null && done !== total) {
    throw new PetrelError('TRANSFER_CONNECTION', `GET ${url.href}: the connection ended after ${done} of ${total} bytes`, { transient: true });
  }

  const checksum = sum && algo ? await verifyChecksum(task, algo, sum.digest(), plan.expected, () => removeFile(part)) : undefined;
  await commitFile(part, dest).catch((e: unknown) => {
    throw localError(e, dest, 'renaming into');
  });
  return { bytesDone: done, bytesTotal: total ?? done, ...(checksum ? { checksum } : {}) };
}

