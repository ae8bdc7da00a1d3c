import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable, Writable } from 'node:stream';
import { PetrelError } from '../errors.js';
import { networkError } from './errors.js';
import type { HttpClient, HttpResponse } from './http.js';

export interface NodeRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  url: URL;
  /** Header names are written exactly so, `Content-Length` included. */
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer`, only to the scheme+host+port of `url`. */
  token?: string | null | undefined;
  /** A fresh body for every hop. */
  body?: (() => Readable) | undefined;
  /** Or: writes the body to the request itself (and ends it), afresh for every hop. */
  writeBody?: ((req: Writable) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Instead of the client's idle timeout: no byte for this long fails the request. */
  idleTimeoutMs?: number | undefined;
  /**
   * Accept a header line ending in a bare LF: XRootD 5.5 ends `Content-Range` so when a `Digest`
   * follows it, which strict parsers (undici's included) reject.
   */
  lenientParser?: boolean;
}

const REDIRECTS = new Set([301, 302, 307, 308]);

function once(client: HttpClient, url: URL, req: NodeRequest, headers: Record<string, string>): Promise<{ res: IncomingMessage; stop(): void }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const body = req.body?.();
    const r = request(
      url,
      {
        method: req.method,
        headers,
        agent: client.nodeAgents[url.protocol as 'https:' | 'http:'],
        signal: req.signal,
        insecureHTTPParser: req.lenientParser ?? false,
      },
      (res) =>
        resolve({
          res,
          stop: () => {
            body?.destroy();
            r.destroy();
          },
        }),
    );
    const idle = req.idleTimeoutMs ?? client.idleTimeoutMs;
    r.setTimeout(idle, () => r.destroy(Object.assign(new Error(`no progress for ${idle} ms`), { code: 'UND_ERR_BODY_TIMEOUT' })));
    r.on('error', (e) => {
      body?.destroy();
      reject(e);
    });
    if (body) {
      body.on('error', (e) => r.destroy(e));
      body.pipe(r);
    } else if (req.writeBody) {
      req.writeBody(r);
    } else {
      r.end();
    }
  });
}

/**
 * A request through node:http(s), for what undici cannot do with XRootD 5.5: a PUT whose
 * `Content-Length` keeps its case, a ranged GET whose reply has a malformed header line, and a
 * HEAD that keeps its connection (undici closes the connection after every HEAD).
 * Redirects are followed by hand, with the token only for the origin it was meant for.
 */
export async function nodeSend(client: HttpClient, req: NodeRequest): Promise<HttpResponse> {
  let url = req.url;
  for (let hop = 0; hop <= 10; hop++) {
    const headers: Record<string, string> = { ...req.headers };
    if (req.token && url.origin === req.url.origin) headers.Authorization = `Bearer ${req.token}`;
    let hop: { res: IncomingMessage; stop(): void };
    try {
      hop = await once(client, url, req, headers);
    } catch (e) {
      throw networkError(e, url);
    }
    const { res } = hop;
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location) {
      return { status: res.statusCode ?? 0, headers: res.headers, body: res, url };
    }
    // Stop sending to the server that redirected: the body goes again, from its start, to the next.
    hop.stop();
    url = new URL(location, url);
  }
  throw new PetrelError('TRANSFER_PROTOCOL', `too many redirects from ${req.url.href}`, { hint: 'the storage redirects in a loop: tell its operators' });
}
