import { Agent as NodeHttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as NodeHttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Readable, Writable } from 'node:stream';
import { PetrelError } from '../errors.js';
import { trustedCAs } from '../tls.js';
import { networkError } from './errors.js';

export interface HttpClientOptions {
  /** Extra CA certificates (PEM file) trusted beside the system's: PETREL_CA_FILE. */
  caFile?: string | undefined;
  connectTimeoutMs?: number;
  /** No byte from the server for this long fails the request. */
  idleTimeoutMs?: number;
}

type Agents = { 'https:': NodeHttpsAgent; 'http:': NodeHttpAgent };

/**
 * node:http(s) for every request. Not undici: it adds 16 MB to the agent's memory (and a 35 MB
 * spike compiling its parser at the first reply), and writes `content-length` in lower case,
 * which XRootD 5.5 (matching header names case-sensitively) ignores on a PUT, storing an empty
 * file. Node's parser copies each body chunk, which costs a 1 GiB GET about 0.4 s more CPU in
 * the agent than undici's did (README, Benchmarks).
 */
export interface HttpClient {
  /** Keep-alive pools: connections are reused across transfers. */
  pooled: Agents;
  /** A connection per request, closed after it (see HttpRequest.keepAlive). */
  fresh: Agents;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** The CAs trusted, parsed once: for connections made outside the agents (direct-range.ts). */
  secureContext: SecureContext;
  /** Follow redirects from https to plain http (a job's --allow-insecure-redirect); refused by default. */
  allowInsecureRedirect?: boolean;
  /** Runs `fn` when no other call for the same key runs (calls queue in order); `signal` ends the wait. */
  oneAtATime<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  close(): Promise<void>;
}

function createSerializer(): HttpClient['oneAtATime'] {
  const tails = new Map<string, Promise<unknown>>();
  return (key, fn, signal) => {
    const prev = tails.get(key) ?? Promise.resolve();
    const turn = () => {
      signal?.throwIfAborted();
      return fn();
    };
    const run = prev.then(turn, turn);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    if (!signal) return run;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      run.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };
}

/**
 * An idle pooled connection is closed after this long, before the server would close it under a
 * request. Only while it waits in the pool: as the agents' standing `timeout` option it would also
 * bound connecting (DNS, TCP), which the connect timeout is for.
 */
const POOLED_IDLE_MS = 30_000;

/**
 * The agent, its pooled connections closed after POOLED_IDLE_MS unused, or sooner when the
 * server's `Keep-Alive: timeout=N` says it closes them sooner (Node shortens the agent's
 * `timeout` option by that hint, so the option is set while a connection goes back to the pool).
 */
function closingIdle<A extends NodeHttpAgent>(agent: A): A {
  const options = (agent as unknown as { options: { timeout?: number } }).options;
  // keepSocketAlive answers whether to keep the connection (its typings say void).
  const keep = agent.keepSocketAlive.bind(agent) as unknown as (socket: Socket) => boolean;
  (agent as unknown as { keepSocketAlive(socket: Socket): boolean }).keepSocketAlive = (socket) => {
    options.timeout = POOLED_IDLE_MS;
    try {
      return keep(socket);
    } finally {
      delete options.timeout;
    }
  };
  return agent;
}

/** One pooled keep-alive client for all storages: connections are reused across transfers. */
export function createHttpClient(opts: HttpClientOptions = {}): HttpClient {
  // One parsed CA store for every connection: passing `ca` instead would re-parse the whole
  // system bundle at each TLS handshake.
  const secureContext = createSecureContext({ ca: trustedCAs(opts.caFile) });
  // No TLS session resumption: XRootD 5.5 servers crash (SIGSEGV) when clients resume sessions
  // on new connections under load; keep-alive makes full handshakes rare anyway.
  const pooled: Agents = {
    'https:': closingIdle(new NodeHttpsAgent({ keepAlive: true, secureContext, maxSockets: 64, maxCachedSessions: 0 })),
    'http:': closingIdle(new NodeHttpAgent({ keepAlive: true, maxSockets: 64 })),
  };
  const fresh: Agents = {
    'https:': new NodeHttpsAgent({ keepAlive: false, secureContext, maxCachedSessions: 0 }),
    'http:': new NodeHttpAgent({ keepAlive: false }),
  };
  return {
    pooled,
    fresh,
    secureContext,
    idleTimeoutMs: opts.idleTimeoutMs ?? 120_000,
    connectTimeoutMs: opts.connectTimeoutMs ?? 30_000,
    oneAtATime: createSerializer(),
    async close() {
      for (const agent of [pooled['https:'], pooled['http:'], fresh['https:'], fresh['http:']]) agent.destroy();
    },
  };
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'COPY' | 'MKCOL' | 'PROPFIND';
  url: URL;
  /** Header names are sent exactly as written, `Content-Length` included (XRootD matches them case-sensitively). */
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer`, only to the scheme+host+port of `url`. */
  token?: string | null | undefined;
  /** Headers that carry secrets (e.g. `TransferHeaderAuthorization`): sent only where the token goes. */
  secretHeaders?: Record<string, string> | undefined;
  /**
   * Writes the body to the request (and ends it), afresh for every hop, since a body cannot be
   * sent twice. A body that cannot go again destroys the request with the reason.
   */
  writeBody?: ((req: Writable) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Instead of the client's idle timeout: no byte for this long fails the request (a server that computes first). */
  idleTimeoutMs?: number | undefined;
  /**
   * HEAD only: keep the connection for the next request. Not by default: XRootD 5.5.3 crashed
   * (SIGSEGV in libssl and libXrdUtils) when a job of copies reused connections for its
   * concurrent HEADs; downloads' digest HEADs, one at a time per origin, do not upset it.
   */
  keepAlive?: boolean | undefined;
  /**
   * Accept a header line ending in a bare LF: XRootD 5.5 ends `Content-Range` so when a `Digest`
   * follows it, which strict parsers reject.
   */
  lenientParser?: boolean | undefined;
  /** `false`: a redirect is the answer (a Pelican director's 307 is read, not followed). */
  followRedirects?: boolean | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The URL that answered, after redirects. */
  url: URL;
  /**
   * From the connection being ready (connected, TLS done, or reused) to the reply's head, in ms:
   * one round trip and the server's own time. Large for a distant server.
   */
  waitedMs: number;
}

const timeoutError = (message: string, code: string) => Object.assign(new Error(message), { code });

/** One request and its reply's head; `stop` ends the request (and so the body it is sending). */
function once(client: HttpClient, url: URL, req: HttpRequest, headers: Record<string, string>): Promise<{ res: IncomingMessage; stop(): void; waitedMs: number }> {
  const protocol = url.protocol as 'https:' | 'http:';
  const request = protocol === 'https:' ? httpsRequest : httpRequest;
  const agents = req.method === 'HEAD' && !req.keepAlive ? client.fresh : client.pooled;
  return new Promise((resolve, reject) => {
    let reply: IncomingMessage | undefined;
    let readyAt = performance.now();
    const r = request(url, { method: req.method, headers, agent: agents[protocol], signal: req.signal, insecureHTTPParser: req.lenientParser ?? false }, (res) => {
      reply = res;
      resolve({ res, stop: () => r.destroy(), waitedMs: performance.now() - readyAt });
    });
    // The reply's body fails with the timeout itself, not with the "aborted" of a torn-down request.
    const fail = (e: Error) => {
      reply?.destroy(e);
      r.destroy(e);
    };
    const idle = req.idleTimeoutMs ?? client.idleTimeoutMs;
    r.setTimeout(idle, () => fail(timeoutError(`no answer for ${idle} ms`, 'IDLE_TIMEOUT')));
    r.once('socket', (socket) => {
      // The idle timeout starts once connected: this one covers connecting and the TLS handshake.
      readyAt = performance.now();
      if (r.reusedSocket || (protocol === 'http:' && !socket.connecting)) return;
      const timer = setTimeout(() => fail(timeoutError(`no connection within ${client.connectTimeoutMs} ms`, 'CONNECT_TIMEOUT')), client.connectTimeoutMs);
      socket.once(protocol === 'https:' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        readyAt = performance.now();
      });
      socket.once('close', () => clearTimeout(timer));
    });
    r.on('error', reject);
    if (req.writeBody) req.writeBody(r);
    else r.end();
  });
}

const DISCARD_LIMIT = 128 * 1024;

/**
 * Throws away a response body we do not need. A short body is read to its end, so the
 * connection can serve the next request; a long one closes it.
 */
export async function discard(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return;
  await new Promise<void>((resolve) => {
    let seen = 0;
    body.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_LIMIT) body.destroy();
    });
    body.once('end', resolve).once('close', resolve).once('error', () => resolve());
    body.resume();
  });
}

const FOLLOWED = new Set([301, 302, 307, 308]);
const FOLLOWED_READING = new Set([...FOLLOWED, 303]);

/**
 * Sends a request, following redirects by hand so the bearer token (and the secret headers) go
 * only to the origin they were meant for: a redirect to another scheme, host or port drops them.
 * A 303 is followed by GET and HEAD only: it tells a PUT or a COPY to fetch something else.
 */
export async function send(client: HttpClient, req: HttpRequest): Promise<HttpResponse> {
  const tokenOrigin = req.url.origin;
  const redirects = req.method === 'GET' || req.method === 'HEAD' ? FOLLOWED_READING : FOLLOWED;
  let url = req.url;
  for (let hop = 0; hop <= 10; hop++) {
    const headers: Record<string, string> = { ...req.headers };
    if (url.origin === tokenOrigin) {
      if (req.token) headers.Authorization = `Bearer ${req.token}`;
      Object.assign(headers, req.secretHeaders);
    }
    let sent: { res: IncomingMessage; stop(): void; waitedMs: number };
    try {
      sent = await once(client, url, req, headers);
    } catch (e) {
      throw networkError(e, url, { beforeReply: true });
    }
    const { res } = sent;
    const location = res.headers.location;
    if (req.followRedirects === false || !redirects.has(res.statusCode ?? 0) || !location) {
      return { status: res.statusCode ?? 0, headers: res.headers, body: res, url, waitedMs: sent.waitedMs };
    }
    // Stop sending to the server that redirected: a body goes again, from its start, to the next.
    if (req.writeBody) sent.stop();
    else await discard(res);
    const next = new URL(location, url);
    if (url.protocol === 'https:' && next.protocol === 'http:' && !client.allowInsecureRedirect) {
      throw new PetrelError('TRANSFER_REFUSED', `${req.method} ${url.href} redirects to plain http (${next.origin}${next.pathname}): not followed, the data would travel unencrypted`, {
        hint: 'if that storage has no https, run again with --allow-insecure-redirect (the token never goes along)',
      });
    }
    url = next;
  }
  throw new PetrelError('TRANSFER_PROTOCOL', `too many redirects from ${req.url.href}`, { hint: 'the storage redirects in a loop: tell its operators' });
}

/** The first value of a response header. */
export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** `Content-Length` as a byte count; undefined when absent or not one. */
export function contentLength(headers: HttpResponse['headers']): number | undefined {
  const v = header(headers, 'content-length')?.trim();
  const n = v ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** `Content-Range: bytes first-last/complete` (RFC 9110 §14.4); `total` is null for `/*`. */
export function contentRange(headers: HttpResponse['headers']): { first: number; last: number; total: number | null } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(header(headers, 'content-range')?.trim() ?? '');
  if (!m) return undefined;
  const [first, last] = [Number(m[1]), Number(m[2])];
  const total = m[3] === '*' ? null : Number(m[3]);
  return last >= first && (total === null || last < total) ? { first, last, total } : undefined;
}

/** Reads at most `max` bytes of a response body as text (servers' error messages). */
export async function bodyText(body: HttpResponse['body'], max = 4096): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      if (text.length < max) text += Buffer.from(chunk as Uint8Array).toString('utf8');
    }
  } catch {
    // a broken body still leaves what arrived
  }
  return text.slice(0, max).trim();
}
