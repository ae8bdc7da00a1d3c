import type { Writable } from 'node:stream';
import { stat } from 'node:fs/promises';
import { PetrelError } from '../errors.js';
import { createChecksummer, type Checksummer } from './checksum.js';
import { remoteDigest } from './remote-digest.js';
import { httpError, localError } from './errors.js';
import { bodyText, discard, header, send, type HttpClient } from './http.js';
import { deleteRemote } from './remote-file.js';
import { writeFileBody } from './file-body.js';
import type { TransferContext, TransferResult, TransferTask } from './task.js';
import { verifyChecksum } from './verify.js';

/**
 * Uploads a local file with Content-Length, checksummed as it streams, then compares with the
 * server's digest. A copy this upload wrote and that cannot be right (cut short by a cancel, the
 * wrong size, the wrong checksum) is deleted again; nothing else at the destination is touched.
 */
export async function upload(client: HttpClient, task: TransferTask, ctx: TransferContext): Promise<TransferResult> {
  const src = task.source;
  const url = new URL(task.destination);
  const size = await stat(src).then(
    (s) => {
      if (!s.isFile()) throw new PetrelError('TRANSFER_SOURCE_MISSING', `${src} is not a regular file`, { hint: 'name a file, not a directory' });
      return s.size;
    },
    (e: unknown) => {
      throw localError(e, src, 'reading');
    },
  );
  const state = { started: false };
  try {
    return await send_(client, task, url, size, ctx, state);
  } catch (e) {
    // Cancelled or stopped mid-body: the server holds a truncated file of ours. A refusal (non-2xx)
    // wrote nothing, and a file that was there before is not ours to delete.
    if (state.started && ctx.signal.aborted) await deleteRemote(client, url, task.token);
    throw e;
  }
}

async function send_(client: HttpClient, task: TransferTask, url: URL, size: number, ctx: TransferContext, state: { started: boolean }): Promise<TransferResult> {
  const src = task.source;
  const algo = task.checksum === 'none' ? undefined : task.checksum;
  let sum: Checksummer | undefined;
  let sent = 0;
  let localFailure: unknown;
  ctx.onProgress({ bytesDone: 0, bytesTotal: size });
  const writeBody = (req: Writable) => {
    // Every hop (redirect) sends the file from its start, with a checksum and count of its own.
    const hopSum = algo ? createChecksummer(algo) : undefined;
    sum = hopSum;
    sent = 0;
    state.started = true;
    writeFileBody(req, {
      path: src,
      size,
      onChunk: (chunk) => {
        if (sum !== hopSum) return;
        hopSum?.update(chunk);
        sent += chunk.length;
        ctx.onProgress({ bytesDone: sent, bytesTotal: size });
      },
      onReadError: (e) => (localFailure ??= e),
    });
  };
  let res;
  try {
    res = await send(client, { method: 'PUT', url, headers: { ...task.headers, 'Content-Length': String(size) }, token: task.token, writeBody, signal: ctx.signal });
  } catch (e) {
    if (localFailure) throw localError(localFailure, src, 'reading');
    throw e;
  }
  if (res.status < 200 || res.status > 299) {
    throw httpError('PUT', url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
  }
  await discard(res.body);
  if (sent !== size) {
    await deleteRemote(client, url, task.token);
    throw new PetrelError('TRANSFER_LOCAL_IO', `${src} changed size while it was uploaded (${sent} of ${size} bytes)`, { hint: 'upload it again once it is complete' });
  }
  if (!algo || !sum) return { bytesDone: sent, bytesTotal: size };

  const remote = await remoteDigest(client, url, task.token, algo, ctx.signal, size);
  const checksum = await verifyChecksum(task, algo, sum.digest(), remote, async () => void (await deleteRemote(client, url, task.token)));
  return { bytesDone: sent, bytesTotal: size, checksum };
}
