// A worker thread of range-workers.ts: fetches one byte range of a download at a time into the
// part file (positional writes on the descriptor the main thread opened), checksumming it.
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PetrelError } from '../errors.js';
import { createChecksummer } from './checksum.js';
import { localError, networkError } from './errors.js';
import { directReadable, readRangeDirect } from './direct-range.js';
import { createHttpClient, type HttpClient } from './http.js';
import { requestRange } from './range-request.js';
import type { FromWorker, RangeJob, ToWorker, WireError, WorkerClientOptions } from './range-workers.js';

const port = parentPort;
if (!port) throw new Error('range-worker.js runs as a worker thread');
const client: HttpClient = createHttpClient(workerData as WorkerClientOptions);
const running = new Map<number, AbortController>();

/** Chunks gathered per positional write. */
const BATCH = 1 << 20;

const post = (msg: FromWorker) => port.postMessage(msg);

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'abort') running.get(msg.id)?.abort();
  else void run(msg.id, msg.job);
});

function wire(e: PetrelError): WireError {
  return { code: e.code, message: e.message, hint: e.hint, transient: e.transient, retryAfterMs: e.retryAfterMs, unanswered: e.unanswered };
}

async function run(id: number, job: RangeJob): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  const url = new URL(job.url);
  let written = 0;
  try {
    const digest = await fetchRange(job, url, controller.signal, (n) => {
      written += n;
      post({ type: 'progress', id, bytes: n });
    });
    post({ type: 'done', id, written, digest });
  } catch (e) {
    const err = controller.signal.aborted ? new PetrelError('TRANSFER_CANCELLED', `GET ${url.href} cancelled`) : e instanceof PetrelError ? e : networkError(e, url);
    post({ type: 'failed', id, written, error: wire(err) });
  } finally {
    running.delete(id);
  }
}

async function fetchRange(job: RangeJob, url: URL, signal: AbortSignal, wrote: (n: number) => void): Promise<string | undefined> {
  if (job.direct && directReadable(url)) {
    // Straight off a TLS connection (direct-range.ts); declined, it goes through node:https below.
    const sum = job.algo ? createChecksummer(job.algo) : undefined;
    const declined = await readRangeDirect({
      url,
      token: job.token,
      headers: job.headers,
      start: job.start,
      end: job.end,
      total: job.total,
      fd: job.fd,
      path: job.path,
      sum,
      onBytes: () => undefined,
      onWritten: wrote,
      guard: () => undefined,
      signal,
      client,
    });
    if (!declined) return sum?.digest();
  }
  const c = job.allowInsecureRedirect ? { ...client, allowInsecureRedirect: true } : client;
  const res = await requestRange(c, { url, token: job.token, headers: job.headers, signal, start: job.start, end: job.end, total: job.total });
  if (res.status !== 206) {
    res.body.destroy();
    throw new PetrelError('TRANSFER_PROTOCOL', `GET ${url.href}: asked for bytes ${job.start}-${job.end - 1}, the server answered ${res.status} without the range`, {
      transient: true,
      hint: 'set "download": {"streams": 1} in config.json for this storage\'s files and run `petrel job retry <id>`',
    });
  }
  const sum = job.algo ? createChecksummer(job.algo) : undefined;
  const expected = job.end - job.start;
  let position = job.start;
  let received = 0;
  // Chunks are copied into one reused buffer and written from there: kept in a list until
  // written, they outlive the young generation, and their memory waits for a full collection
  // (the worker's RSS grew by 30 MB so).
  const batch = Buffer.allocUnsafeSlow(BATCH);
  let batched = 0;
  const flush = () => {
    let from = 0;
    while (from < batched) {
      let n: number;
      try {
        n = writeSync(job.fd, batch, from, batched - from, position);
      } catch (e) {
        throw localError(e, job.path, 'writing');
      }
      position += n;
      from += n;
      wrote(n);
    }
    batched = 0;
  };
  const take = (chunk: Buffer) => {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(batch, batched, at);
      at += n;
      batched += n;
      if (batched === BATCH) flush();
    }
  };
  await new Promise<void>((resolve, reject) => {
    const body = res.body;
    const fail = (e: unknown) => {
      body.destroy();
      reject(e);
    };
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > expected) return fail(new PetrelError('TRANSFER_PROTOCOL', `GET ${url.href}: the server sent more than the ${expected} bytes of the range`, { hint: 'tell the storage operators; nothing was kept' }));
      sum?.update(chunk);
      try {
        take(chunk);
      } catch (e) {
        fail(e);
      }
    });
    body.once('end', resolve);
    body.once('error', reject);
    body.once('close', () => reject(Object.assign(new Error('the connection closed'), { code: 'ECONNRESET' })));
  }).catch((e: unknown) => {
    // What arrived before the failure is written all the same: a resume keeps it.
    if (!(e instanceof PetrelError && e.code === 'TRANSFER_PROTOCOL')) {
      try {
        flush();
      } catch {
        // the first failure is the one to report
      }
    }
    throw e instanceof PetrelError ? e : networkError(e, url);
  });
  flush();
  if (received !== expected) {
    throw new PetrelError('TRANSFER_CONNECTION', `GET ${url.href}: the connection ended after ${received} of the range's ${expected} bytes`, { transient: true });
  }
  return sum?.digest();
}
