// A large download's bytes read straight off a TLS connection of their own into the part file.
// node:https costs a 1 GiB GET about twice the CPU of the TLS socket under it (its parser and two
// streams handle each 16 KiB record; README, Benchmarks): here the socket decrypts into one reused
// buffer (tls `onread`), each record is checksummed and copied into 1 MiB batches, and the batches
// are written in order, one write at a time, so what reached the file never has a gap.
import { write } from 'node:fs';
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { PetrelError } from '../errors.js';
import type { Checksummer } from './checksum.js';
import { localError, networkError } from './errors.js';
import { contentLength, contentRange, type HttpClient, type HttpResponse } from './http.js';
import { createWriteBehind } from './local-file.js';

export interface DirectRange {
  /** https only. */
  url: URL;
  /** Sent as `Authorization: Bearer`: the caller passes it only for the origin it was meant for. */
  token: string | null;
  headers: Record<string, string> | undefined;
  /** First byte, the one after the last, and the file's size, which the reply must name. */
  start: number;
  end: number;
  total: number;
  fd: number;
  /** The part file's path, for error messages. */
  path: string;
  sum: Checksummer | undefined;
  /** Bytes received (counted before they are written). */
  onBytes(n: number): void;
  /** Bytes that reached the file, in order from `start`: what a resume may keep. */
  onWritten?(n: number): void;
  /** See body-writer.ts createGuard: a limit on bytes and, now and then, a look at the free space. */
  guard(n: number): Promise<void> | undefined;
  signal: AbortSignal;
  /** Its CAs and timeouts. */
  client: Pick<HttpClient, 'secureContext' | 'connectTimeoutMs' | 'idleTimeoutMs'>;
}

/** Why the reply was not taken: nothing was written, and the caller asks again through node:https. */
export interface Declined {
  declined: string;
}

const BATCH = 1 << 20;
/** Batches filled while one is written; past this the socket pauses until a write ends. */
const BATCHES = 4;
const MAX_HEAD = 64 << 10;
/** What may go on a request line or in a header: visible ASCII, space and tab (no CR, LF or NUL). */
const FIELD = /^[\t\x20-\x7e]*$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Origins whose replies were declined once: their downloads go through node:https from then on. */
const declinedOrigins = new Set<string>();

/** Whether `url` may be read directly: https, from an origin not declined before. */
export const directReadable = (url: URL): boolean => url.protocol === 'https:' && !declinedOrigins.has(url.origin);

function requestHead(r: DirectRange): string | undefined {
  const fields: [string, string][] = [['Host', r.url.host]];
  for (const [name, value] of Object.entries(r.headers ?? {})) if (name.toLowerCase() !== 'range' && name.toLowerCase() !== 'connection') fields.push([name, value]);
  if (r.token) fields.push(['Authorization', `Bearer ${r.token}`]);
  fields.push(['Range', `bytes=${r.start}-${r.end - 1}`], ['Connection', 'close']);
  const target = `${r.url.pathname}${r.url.search}`;
  if (!FIELD.test(target) || target.includes(' ') || fields.some(([n, v]) => !TOKEN.test(n) || !FIELD.test(v))) return undefined;
  return `GET ${target} HTTP/1.1\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
}

/** The end of a reply's head (after its blank line), or -1; a line may end with a bare LF (XRootD 5.5). */
function headEnd(head: Buffer): number {
  const crlf = head.indexOf('\n\r\n');
  const lf = head.indexOf('\n\n');
  if (crlf < 0) return lf < 0 ? -1 : lf + 2;
  return lf < 0 || crlf < lf ? crlf + 3 : lf + 2;
}

function parseHead(text: string): { status: number; headers: HttpResponse['headers'] } | undefined {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!status) return undefined;
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    // A folded or nameless line: not a plain reply.
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') return undefined;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers[name];
    headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return { status: Number(status[1]), headers };
}

/** Whether a reply is exactly the range asked for, as a plain body of known length; else why not. */
function refusal(r: DirectRange, status: number, headers: HttpResponse['headers']): string | undefined {
  if (status !== 206) return `answered ${status}`;
  if (headers['transfer-encoding'] !== undefined) return 'sent the range in chunks';
  if (contentLength(headers) !== r.end - r.start) return 'announced another length';
  const range = contentRange(headers);
  if (range?.first !== r.start || range.last !== r.end - 1 || range.total !== r.total) return 'sent another range';
  return undefined;
}

/**
 * GETs bytes `start` to `end` of `url` over a TLS connection of its own and writes them at the
 * same offsets of `fd`, checksumming and counting as they come. Takes only a 206 with exactly that
 * range and its length; anything else (a redirect, an error, chunks, a 200) is declined before a
 * byte is written, and so is the origin's every later reply. Resolves once all is written (not
 * fsynced); a failure leaves what was written, without a gap, for a resume.
 */
export function readRangeDirect(r: DirectRange): Promise<Declined | undefined> {
  const head = requestHead(r);
  if (!head) return Promise.resolve({ declined: 'a header cannot be sent as it is' });
  const expected = r.end - r.start;
  const { secureContext, connectTimeoutMs, idleTimeoutMs } = r.client;
  const host = r.url.hostname.replace(/^\[|\]$/g, '');
  const writeBehind = createWriteBehind(r.fd);
  return new Promise((resolve, reject) => {
    let settled = false;
    let connected = false;
    /** The reply's head as it comes, then undefined once the body flows. */
    let headBytes: Buffer | undefined = Buffer.alloc(0);
    let received = 0;
    let position = r.start;
    let batch: Buffer = Buffer.allocUnsafeSlow(BATCH);
    let filled = 0;
    const spare: Buffer[] = [];
    /** Batches waiting for the file, in order: the bytes `from` to `to` of `buf` are still to go. */
    const full: { buf: Buffer; from: number; to: number }[] = [];
    let writing = false;
    let pausedForDisk = false;
    let pausedForGuard = false;
    let allReceived = false;
    let failure: PetrelError | undefined;

    const onAbort = () => fail(new PetrelError('TRANSFER_CANCELLED', `GET ${r.url.href} cancelled`));

    const cleanUp = () => {
      clearTimeout(connectTimer);
      r.signal.removeEventListener('abort', onAbort);
    };
    /** Ends the attempt once no write is in flight: what reached the file is then final. */
    const settle = () => {
      if (settled || writing) return;
      if (!failure && !(allReceived && !full.length && filled === 0)) return;
      settled = true;
      cleanUp();
      void writeBehind.settle().then(() => (failure ? reject(failure) : resolve(undefined)));
    };
    function fail(e: PetrelError): void {
      if (settled || failure) return;
      failure = e;
      socket.destroy();
      settle();
    }
    const decline = (why: string) => {
      if (settled) return;
      settled = true;
      cleanUp();
      socket.destroy();
      declinedOrigins.add(r.url.origin);
      resolve({ declined: `${r.url.host} ${why}` });
    };

    const writeNext = (): void => {
      const next = full[0];
      if (!next || failure) return settle();
      writing = true;
      write(r.fd, next.buf, next.from, next.to - next.from, position, (e, n) => {
        writing = false;
        if (e) return fail(localError(e, r.path, 'writing'));
        position += n;
        next.from += n;
        writeBehind.wrote(n);
        r.onWritten?.(n);
        // The kernel may take part of it: the rest goes next.
        if (next.from === next.to) spare.push((full.shift() as { buf: Buffer }).buf);
        if (pausedForDisk && full.length < BATCHES) {
          pausedForDisk = false;
          socket.resume();
        }
        writeNext();
      });
    };
    const queueBatch = () => {
      full.push({ buf: batch, from: 0, to: filled });
      batch = spare.pop() ?? Buffer.allocUnsafeSlow(BATCH);
      filled = 0;
      if (!writing) writeNext();
    };

    /** A piece of the body, valid only during this call. Returns false to pause the socket. */
    const onBody = (view: Buffer): boolean => {
      if (failure || allReceived) return true;
      const take = Math.min(view.length, expected - received);
      const piece = take === view.length ? view : view.subarray(0, take);
      let verdict: Promise<void> | undefined;
      try {
        verdict = r.guard(take);
      } catch (e) {
        fail(e instanceof PetrelError ? e : networkError(e, r.url));
        return true;
      }
      r.sum?.update(piece);
      for (let from = 0; from < take; ) {
        const n = Math.min(BATCH - filled, take - from);
        piece.copy(batch, filled, from, from + n);
        filled += n;
        from += n;
        if (filled === BATCH) queueBatch();
      }
      received += take;
      r.onBytes(take);
      if (received === expected) {
        allReceived = true;
        if (filled) queueBatch();
        // The whole range is here: the server closes its end after it (Connection: close).
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
        settle();
        return true;
      }
      if (verdict) {
        pausedForGuard = true;
        verdict.then(
          () => {
            pausedForGuard = false;
            if (!pausedForDisk && !failure) socket.resume();
          },
          (e: unknown) => fail(e instanceof PetrelError ? e : networkError(e, r.url)),
        );
        return false;
      }
      if (full.length >= BATCHES) {
        pausedForDisk = true;
        return false;
      }
      return true;
    };

    const onHead = (view: Buffer): boolean => {
      const sofar: Buffer = Buffer.concat([headBytes as Buffer, view]);
      const end = headEnd(sofar);
      if (end < 0) {
        if (sofar.length > MAX_HEAD) decline('sent a head longer than 64 KiB');
        else headBytes = sofar;
        return true;
      }
      headBytes = undefined;
      const reply = parseHead(sofar.subarray(0, end).toString('latin1'));
      const why = reply ? refusal(r, reply.status, reply.headers) : 'sent a head that is not plain HTTP/1.1';
      if (why) {
        decline(why);
        return true;
      }
      return end < sofar.length ? onBody(sofar.subarray(end)) : true;
    };

    // `onread` is Node's (since 15.1, tls too), missing from its typings.
    const options: ConnectionOptions & { onread: { buffer: Buffer; callback(n: number, buf: Uint8Array): boolean } } = {
      host,
      port: Number(r.url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      secureContext,
      ALPNProtocols: ['http/1.1'],
      onread: {
        buffer: Buffer.allocUnsafe(64 << 10),
        callback: (n: number, buf: Uint8Array) => {
          const view = Buffer.from(buf.buffer, buf.byteOffset, n);
          return headBytes ? onHead(view) : onBody(view);
        },
      },
    };
    const socket: TLSSocket = connect(options);
    const connectTimer = setTimeout(() => fail(networkError(Object.assign(new Error(`no connection within ${connectTimeoutMs} ms`), { code: 'CONNECT_TIMEOUT' }), r.url, { beforeReply: true })), connectTimeoutMs);
    if (r.signal.aborted) onAbort();
    else r.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      connected = true;
      clearTimeout(connectTimer);
      socket.setTimeout(idleTimeoutMs);
      socket.write(head);
    });
    socket.on('timeout', () => {
      if (allReceived) return;
      // A socket paused for the disk or the space check hears nothing by its own choice.
      if (pausedForDisk || pausedForGuard) return void socket.setTimeout(idleTimeoutMs);
      fail(networkError(Object.assign(new Error(`no answer for ${idleTimeoutMs} ms`), { code: 'IDLE_TIMEOUT' }), r.url, { beforeReply: headBytes !== undefined }));
    });
    socket.on('error', (e) => allReceived || fail(networkError(e, r.url, { beforeReply: !connected || headBytes !== undefined })));
    socket.on('close', () => {
      if (allReceived || settled) return;
      fail(
        headBytes !== undefined
          ? networkError(Object.assign(new Error('the server closed the connection before answering'), { code: 'ECONNRESET' }), r.url, { beforeReply: true })
          : new PetrelError('TRANSFER_CONNECTION', `GET ${r.url.href}: the connection ended after ${received} of ${expected} bytes`, { transient: true }),
      );
    });
  });
}
