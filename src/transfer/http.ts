import { Agent as NodeHttpAgent } from 'node:http';
import { Agent as NodeHttpsAgent } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { PetrelError } from '../errors.js';
import { trustedCAs } from '../tls.js';
import { networkError } from './errors.js';
import { nodeSend } from './node-request.js';

export interface HttpClientOptions {
  /** Extra CA certificates (PEM file) trusted beside the system's: PETREL_CA_FILE. */
  caFile?: string | undefined;
  connectTimeoutMs?: number;
  /** No byte from the server for this long fails the request. */
  idleTimeoutMs?: number;
}

/**
 * undici for everything but uploads; node:http(s) for PUT, because undici always writes
 * `content-length` in lower case and XRootD 5.5 matches header names case-sensitively: it
 * ignores the length and stores an empty file.
 */
export interface HttpClient {
  undici: Agent;
  nodeAgents: { 'https:': NodeHttpsAgent; 'http:': NodeHttpAgent };
  idleTimeoutMs: number;
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

/** One pooled keep-alive client for all storages: connections are reused across transfers. */
export function createHttpClient(opts: HttpClientOptions = {}): HttpClient {
  const idle = opts.idleTimeoutMs ?? 120_000;
  // One parsed CA store for every connection: passing `ca` instead would re-parse the whole
  // system bundle at each TLS handshake.
  const secureContext = createSecureContext({ ca: trustedCAs(opts.caFile) });
  // No TLS session resumption: XRootD 5.5 servers crash (SIGSEGV) when clients resume sessions
  // on new connections under load; keep-alive makes full handshakes rare anyway.
  const undici = new Agent({
    connect: { secureContext, timeout: opts.connectTimeoutMs ?? 30_000, maxCachedSessions: 0 },
    headersTimeout: idle,
    bodyTimeout: idle,
    keepAliveTimeout: 30_000,
    connections: 64,
  });
  const nodeAgents = {
    'https:': new NodeHttpsAgent({ keepAlive: true, secureContext, maxSockets: 64, maxCachedSessions: 0 }),
    'http:': new NodeHttpAgent({ keepAlive: true, maxSockets: 64 }),
  };
  return {
    undici,
    nodeAgents,
    idleTimeoutMs: idle,
    oneAtATime: createSerializer(),
    async close() {
      nodeAgents['https:'].destroy();
      nodeAgents['http:'].destroy();
      await undici.close();
    },
  };
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'COPY' | 'MKCOL';
  url: URL;
  /** Header names are sent exactly as written (XRootD matches them case-sensitively). */
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer`, only to the scheme+host+port of `url`. */
  token?: string | null | undefined;
  /** Headers that carry secrets (e.g. `TransferHeaderAuthorization`): sent only where the token goes. */
  secretHeaders?: Record<string, string> | undefined;
  /** A fresh body for every hop, since a stream cannot be sent twice. */
  body?: (() => Readable | Buffer) | undefined;
  signal?: AbortSignal | undefined;
  /** Instead of the client's idle timeout, for a reply the server may take longer to start. */
  headersTimeout?: number | undefined;
  /**
   * HEAD only: keep the connection for the next request. Not by default: XRootD 5.5.3 crashed
   * (SIGSEGV in libssl and libXrdUtils) when a job of copies reused connections for its
   * concurrent HEADs; downloads' digest HEADs, one at a time per origin, do not upset it.
   */
  keepAlive?: boolean | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The URL that answered, after redirects. */
  url: URL;
}

const DISCARD_LIMIT = 128 * 1024;

/**
 * Throws away a response body we do not need. A short body is read to its end, so the
 * connection can serve the next request; a long one closes it.
 */
export async function discard(body: Readable): Promise<void> {
  const dump = (body as { dump?: (opts?: { limit: number }) => Promise<void> }).dump;
  if (dump) {
    await dump.call(body, { limit: DISCARD_LIMIT }).catch(() => undefined);
    return;
  }
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

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Sends a request, following redirects by hand so the bearer token goes only to the origin it
 * was meant for: a redirect to another scheme, host or port drops `Authorization`.
 */
export async function send(client: HttpClient, req: HttpRequest): Promise<HttpResponse> {
  // undici closes its connection after every HEAD: for a download's digest, one per file, that
  // was a TLS handshake per file, so those go through node:https, which keeps the connection.
  if (req.method === 'HEAD' && req.keepAlive && !req.secretHeaders && !req.body) {
    const { method, url, headers, token, signal, headersTimeout } = req;
    return nodeSend(client, { method, url, headers, token, signal, idleTimeoutMs: headersTimeout });
  }
  const tokenOrigin = req.url.origin;
  let url = req.url;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { ...req.headers };
    if (url.origin === tokenOrigin) {
      if (req.token) headers.Authorization = `Bearer ${req.token}`;
      Object.assign(headers, req.secretHeaders);
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await client.undici.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        body: req.body?.() ?? null,
        signal: req.signal,
        ...(req.headersTimeout ? { headersTimeout: req.headersTimeout } : {}),
      });
    } catch (e) {
      throw networkError(e, url);
    }
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode) || typeof location !== 'string') {
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
    await discard(res.body);
    if (hop >= 10) {
      throw new PetrelError('TRANSFER_PROTOCOL', `too many redirects from ${req.url.href}`, { hint: 'the storage redirects in a loop: tell its operators' });
    }
    url = new URL(location, url);
  }
}

/** The first value of a response header. */
export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
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
