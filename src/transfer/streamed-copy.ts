import { pipeline, type Writable } from 'node:stream';
import { PetrelError } from '../errors.js';
import { createChecksummer } from './checksum.js';
import { httpError } from './errors.js';
import { bodyText, contentLength, discard, header, send, type HttpClient } from './http.js';
import { remoteDigest } from './remote-digest.js';
import { createTap } from './stream-tap.js';
import type { TransferContext, TransferResult, TransferTask } from './task.js';
import { verifyChecksum } from './verify.js';

/**
 * The fallback for storages that refuse COPY, as gfal2's streamed mode: GET from the source piped
 * into a PUT to the destination through this process, checksummed on the way and compared with
 * the destination's digest. What it wrote is removed again if it cannot be right.
 */
export async function streamedCopy(client: HttpClient, task: TransferTask, ctx: TransferContext, remove: () => Promise<unknown>): Promise<TransferResult> {
  const src = new URL(task.source);
  const dst = new URL(task.destination);
  const get = await send(client, { method: 'GET', url: src, token: task.sourceToken ?? null, signal: ctx.signal });
  if (get.status !== 200) throw httpError('GET', get.url, get.status, await bodyText(get.body), header(get.headers, 'retry-after'));
  const size = contentLength(get.headers);
  if (size === undefined) {
    await discard(get.body);
    throw new PetrelError('TRANSFER_PROTOCOL', `GET ${src.href} gave no Content-Length, which a streamed copy needs for its PUT`);
  }
  const algo = task.checksum === 'none' ? undefined : task.checksum;
  const sum = algo ? createChecksummer(algo) : undefined;
  let sent = 0;
  let used = false;
  ctx.onProgress({ bytesDone: 0, bytesTotal: size });
  const writeBody = (req: Writable) => {
    // The source's stream can be sent once: a redirected PUT retries the whole copy.
    if (used) return void req.destroy(new PetrelError('TRANSFER_PROTOCOL', `${dst.host} redirected the PUT of a streamed copy`, { transient: true }));
    used = true;
    const tap = createTap(sum, (n) => {
      sent += n;
      ctx.onProgress({ bytesDone: sent, bytesTotal: size });
    });
    // Whichever side fails first tears down the others (the request's own error is what send() reports).
    pipeline(get.body, tap, req, () => undefined);
  };
  try {
    const res = await send(client, { method: 'PUT', url: dst, headers: { 'Content-Length': String(size) }, token: task.token, writeBody, signal: ctx.signal });
    if (res.status < 200 || res.status > 299) throw httpError('PUT', dst, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
    await discard(res.body);
    if (sent !== size) throw new PetrelError('TRANSFER_INTERRUPTED', `streamed copy ${src.href} → ${dst.href} was cut at ${sent} of ${size} bytes`, { transient: true });
  } catch (e) {
    get.body.destroy();
    if (used) await remove();
    throw e;
  }
  if (!algo || !sum) return { bytesDone: sent, bytesTotal: size };
  const remote = await remoteDigest(client, dst, task.token, algo, ctx.signal, size);
  const checksum = await verifyChecksum(task, algo, sum.digest(), remote, async () => void (await remove()));
  return { bytesDone: sent, bytesTotal: size, checksum };
}
