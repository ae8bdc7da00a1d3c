import { PetrelError } from '../errors.js';
import { redactText } from '../log.js';
import type { ChecksumAlgorithm } from './checksum.js';
import { httpError, isAbort, networkError } from './errors.js';
import { bodyText, contentLength, discard, send, type HttpClient } from './http.js';
import { deleteRemote } from './remote-file.js';
import { remoteDigest } from './remote-digest.js';
import type { TransferContext, TransferResult, TransferTask } from './task.js';
import { streamedCopy } from './streamed-copy.js';
import { createMarkerParser } from './tpc-markers.js';

export interface CopyOptions {
  /** No perf marker for this long: the copy is taken as stalled, aborted and retried. */
  markerTimeoutMs: number;
}

/** Who gets the COPY and what it carries, for pull (to the destination) or push (to the source). */
function copyRequest(task: TransferTask): { url: URL; token: string | null; peer: Record<string, string>; secret: Record<string, string> | undefined } {
  const source = new URL(task.source);
  const destination = new URL(task.destination);
  const push = task.copyMode === 'push';
  const bearer = (t: string | null | undefined) => (t ? { TransferHeaderAuthorization: `Bearer ${t}` } : undefined);
  return push
    ? { url: source, token: task.sourceToken ?? null, peer: { Destination: destination.href }, secret: bearer(task.token) }
    : { url: destination, token: task.token, peer: { Source: source.href }, secret: bearer(task.sourceToken) };
}

/** An earlier attempt began writing (it was cut, or recorded bytes): what is at the destination is ours. */
const leftoverIsOurs = (task: TransferTask): boolean => task.previousError === 'TRANSFER_INTERRUPTED' || (Boolean(task.previousError) && (task.previousBytes ?? 0) > 0);

/** A `failure:` line names the other side's status: 401/403/404 will not heal by retrying. */
function finalFailure(text: string, task: TransferTask): PetrelError {
  const said = redactText(text);
  const status = /status code (\d{3})/i.exec(text)?.[1];
  const message = `copy ${task.source} → ${task.destination} failed: ${said}`;
  if (status === '404') return new PetrelError('TRANSFER_SOURCE_MISSING', message, { hint: 'check the source URL' });
  if (status === '401' || status === '403') {
    return new PetrelError('TRANSFER_DENIED', message, { hint: 'the other storage refused the token the copy carried: check its scope and audience' });
  }
  return new PetrelError('TRANSFER_SERVER_ERROR', message, { transient: true });
}

/** The storage does not do COPY at all: 405/501, or XRootD 5.5 without its TPC handler: `400 Request unknown`. */
const copyUnsupported = (status: number, text: string): boolean => status === 405 || status === 501 || (status === 400 && /^request unknown/i.test(text.trim()));

/** A refusal before the copy started (XRootD: 401 no write scope, 400 source missing in push, 412 exists). */
function refusal(status: number, text: string, url: URL): PetrelError {
  if (status === 412) {
    return new PetrelError('TRANSFER_REFUSED', `COPY ${url.href}: 412 ${redactText(text) || 'the destination exists'}`, { hint: 'pass --overwrite to replace it' });
  }
  if (status === 400 && /no such file/i.test(text) && /unable to open/i.test(text)) {
    return new PetrelError('TRANSFER_SOURCE_MISSING', `COPY ${url.href}: 400 ${redactText(text)}`, { hint: 'check the source URL' });
  }
  if (copyUnsupported(status, text)) {
    return new PetrelError('TRANSFER_REFUSED', `COPY ${url.href}: ${status} ${redactText(text) || 'the storage does not do third-party copies'}`, {
      hint: 'stream the data through petrel instead: --fallback streamed',
    });
  }
  return httpError('COPY', url, status, text);
}

/** Deletes what a failed or cancelled copy left at the destination (see deleteRemote). */
export const removeCopyLeftover = (client: HttpClient, task: TransferTask): Promise<string | undefined> => deleteRemote(client, new URL(task.destination), task.token ?? null);

/**
 * A retry refused because the destination exists, where an empty file is: what an earlier attempt
 * left when it was cut before the server answered (XRootD creates the file before it replies).
 * Not someone else's: a file there at the first attempt would have failed it for good (412),
 * unless that attempt never reached the server; then an empty file is all that is replaced.
 */
async function emptyLeftover(client: HttpClient, task: TransferTask): Promise<boolean> {
  if (task.overwrite || !task.previousError || task.leftoverRemoved) return false;
  return (await destinationSize(client, task)) === 0;
}

/** MKCOL each missing parent of the destination: a pull COPY does not create directories. */
async function makeParents(client: HttpClient, task: TransferTask, signal: AbortSignal): Promise<void> {
  const url = new URL(task.destination);
  const parts = url.pathname.split('/').filter(Boolean).slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = new URL(`/${parts.slice(0, i).join('/')}/`, url);
    const res = await send(client, { method: 'MKCOL', url: dir, token: task.token, signal });
    await discard(res.body);
  }
}

/**
 * HTTP third-party copy (protocols.md §1): one COPY to the active storage, whose streamed
 * reply is read as it comes; the copy succeeded only on a final `success` line. Then both
 * ends' checksums are compared unless the job says `none`.
 */
export async function thirdPartyCopy(client: HttpClient, task: TransferTask, ctx: TransferContext, opts: CopyOptions): Promise<TransferResult> {
  const req = copyRequest(task);
  const stall = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stall.signal]);
  let timer: NodeJS.Timeout | undefined;
  const armStallTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), opts.markerTimeoutMs);
  };
  let started = false;
  let bytes = 0;
  try {
    armStallTimer();
    const res = await send(client, {
      method: 'COPY',
      url: req.url,
      token: req.token,
      // A retry may replace what an earlier, cut attempt of this copy left and could not remove.
      headers: { ...task.headers, ...req.peer, Credential: 'none', Overwrite: task.overwrite || leftoverIsOurs(task) ? 'T' : 'F' },
      secretHeaders: req.secret,
      signal,
    });
    if (res.status !== 201 && res.status !== 202 && res.status !== 200) {
      const text = await bodyText(res.body);
      if (res.status === 400 && /unable to create/i.test(text) && /no such file/i.test(text) && !task.parentsMade) {
        await makeParents(client, task, signal);
        clearTimeout(timer);
        return thirdPartyCopy(client, { ...task, parentsMade: true }, ctx, opts);
      }
      if (res.status === 412 && (await emptyLeftover(client, task))) {
        clearTimeout(timer);
        await removeCopyLeftover(client, task);
        return thirdPartyCopy(client, { ...task, leftoverRemoved: true }, ctx, opts);
      }
      if (copyUnsupported(res.status, text) && task.fallback === 'streamed') {
        clearTimeout(timer);
        return streamedCopy(client, task, ctx, () => removeCopyLeftover(client, task));
      }
      throw refusal(res.status, text, res.url);
    }
    started = true;
    const parser = createMarkerParser();
    let final;
    for await (const chunk of res.body) {
      armStallTimer();
      for (const ev of parser.feed(chunk as Uint8Array)) {
        if (ev.type === 'progress') {
          bytes = ev.bytes;
          ctx.onProgress({ bytesDone: bytes, bytesTotal: null });
        } else final = ev;
      }
    }
    final ??= parser.end();
    clearTimeout(timer);
    if (!final) {
      throw new PetrelError('TRANSFER_INTERRUPTED', `copy ${task.source} → ${task.destination}: the reply ended without a final line (the copying server stopped)`, { transient: true });
    }
    if (final.type !== 'final' || !final.ok) throw finalFailure(final.type === 'final' ? final.text : '', task);
  } catch (e) {
    clearTimeout(timer);
    let err = stall.signal.aborted && !ctx.signal.aborted
      ? new PetrelError('TRANSFER_TIMEOUT', `copy ${task.source} → ${task.destination}: no progress marker for ${Math.round(opts.markerTimeoutMs / 1000)} s`, { transient: true })
      : e instanceof PetrelError ? e : isAbort(e) ? new PetrelError('TRANSFER_CANCELLED', 'cancelled') : networkError(e, req.url);
    // Cut after it began (connection lost, stalled): the retry knows the leftover is its own.
    if (started && !ctx.signal.aborted && (err.code === 'TRANSFER_CONNECTION' || err.code === 'TRANSFER_TIMEOUT')) {
      err = new PetrelError('TRANSFER_INTERRUPTED', `copy ${task.source} → ${task.destination} was cut: ${err.message}`, { transient: true, cause: err });
    } else if (!started && err.transient && leftoverIsOurs(task) && err.code !== 'TRANSFER_INTERRUPTED') {
      // This attempt never reached the destination (it was restarting, say): what an earlier one
      // left there is still ours, and the next attempt must know it.
      err = new PetrelError('TRANSFER_INTERRUPTED', `${err.message} (an earlier attempt's partial copy may still be at the destination)`, { transient: true, retryAfterMs: err.retryAfterMs, cause: err });
    }
    // A copy that began (then failed, stalled, was cancelled or cut by a shutdown) leaves a 0-byte
    // or partial file behind; a retry with Overwrite: F would meet it. It cannot be resumed.
    if (started) {
      const left = await removeCopyLeftover(client, task);
      if (left) throw new PetrelError(err.code, `${err.message}; ${left}`, { hint: err.hint, transient: err.transient, retryAfterMs: err.retryAfterMs });
    }
    throw err;
  }
  const size = (await destinationSize(client, task)) ?? bytes;
  ctx.onProgress({ bytesDone: size, bytesTotal: size });
  const checksum = task.checksum === 'none' ? undefined : await compareEnds(client, task, task.checksum, ctx.signal);
  return { bytesDone: size, bytesTotal: size, ...(checksum ? { checksum } : {}) };
}

/** The copy's size as the destination reports it: the last marker may predate the last bytes. */
async function destinationSize(client: HttpClient, task: TransferTask): Promise<number | undefined> {
  try {
    const res = await send(client, { method: 'HEAD', url: new URL(task.destination), token: task.token });
    await discard(res.body);
    return res.status === 200 ? contentLength(res.headers) : undefined;
  } catch {
    return undefined;
  }
}

/** Both ends' digests; a mismatch removes the copy and fails (a second one is final). */
async function compareEnds(client: HttpClient, task: TransferTask, algo: ChecksumAlgorithm, signal: AbortSignal) {
  const src = await remoteDigest(client, new URL(task.source), task.sourceToken ?? null, algo, signal, null);
  const dst = await remoteDigest(client, new URL(task.destination), task.token, algo, signal, null);
  if (src === undefined || dst === undefined) return dst === undefined && src === undefined ? undefined : { algorithm: algo, value: (src ?? dst) as string, verified: false };
  if (src !== dst) {
    await removeCopyLeftover(client, task);
    throw new PetrelError('TRANSFER_CHECKSUM_MISMATCH', `copy ${task.source} → ${task.destination}: ${algo} differs (source ${src}, destination ${dst})`, {
      transient: task.previousError !== 'TRANSFER_CHECKSUM_MISMATCH',
      hint: 'the copy was removed; retry with `petrel job retry <id>`',
    });
  }
  return { algorithm: algo, value: dst, verified: true };
}
