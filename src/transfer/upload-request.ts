import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { PetrelError } from '../errors.js';
import { networkError } from './errors.js';
import type { HttpClient } from './http.js';

export interface UploadResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first few KiB of the reply (servers' messages). */
  text: string;
  url: URL;
}

const REDIRECTS = new Set([301, 302, 307, 308]);
const MAX_TEXT = 4096;

function putOnce(client: HttpClient, url: URL, headers: Record<string, string>, body: Readable, signal: AbortSignal | undefined): Promise<UploadResponse> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers, agent: client.nodeAgents[url.protocol as 'https:' | 'http:'], signal }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < MAX_TEXT) text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: text.slice(0, MAX_TEXT), url }));
      res.on('error', reject);
    });
    req.setTimeout(client.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no progress for ${client.idleTimeoutMs} ms`), { code: 'UND_ERR_BODY_TIMEOUT' })));
    req.on('error', (e) => {
      body.destroy();
      reject(e);
    });
    body.on('error', (e) => req.destroy(e));
    body.pipe(req);
  });
}

/**
 * PUT with `Content-Length` written exactly so, following redirects by hand: the token goes only
 * to the origin it was meant for, and every hop gets a fresh body.
 */
export async function sendUpload(
  client: HttpClient,
  req: { url: URL; size: number; token: string | null; body: () => Readable; signal?: AbortSignal | undefined },
): Promise<UploadResponse> {
  let url = req.url;
  for (let hop = 0; hop <= 10; hop++) {
    const headers: Record<string, string> = { 'Content-Length': String(req.size) };
    if (req.token && url.origin === req.url.origin) headers.Authorization = `Bearer ${req.token}`;
    let res: UploadResponse;
    try {
      res = await putOnce(client, url, headers, req.body(), req.signal);
    } catch (e) {
      throw networkError(e, url);
    }
    const location = res.headers.location;
    if (!REDIRECTS.has(res.status) || !location) return res;
    url = new URL(location, url);
  }
  throw new PetrelError('TRANSFER_PROTOCOL', `too many redirects from ${req.url.href}`, { hint: 'the storage redirects in a loop: tell its operators' });
}
