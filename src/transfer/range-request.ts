import { PetrelError } from '../errors.js';
import { httpError } from './errors.js';
import { bodyText, contentRange, discard, header, send, type HttpClient, type HttpResponse } from './http.js';

export interface RangeRequest {
  url: URL;
  token: string | null;
  headers: Record<string, string> | undefined;
  signal: AbortSignal;
  /** First byte, and the one after the last. */
  start: number;
  end: number;
  /** The file's size, which the reply's Content-Range must name. */
  total: number;
}

/**
 * GET of one closed range of a download. A 206 must hold exactly that range of the file
 * (`Content-Range: bytes start-last/total`); another success (a server that ignored Range) is
 * returned as it is, for the caller to decide; an error status fails with the server's words.
 */
export async function requestRange(client: HttpClient, r: RangeRequest): Promise<HttpResponse> {
  const last = r.end - 1;
  // Lenient: XRootD 5.5 ends the Content-Range line of its 206 replies with a bare LF.
  const res = await send(client, { method: 'GET', url: r.url, token: r.token, headers: { ...r.headers, Range: `bytes=${r.start}-${last}` }, signal: r.signal, lenientParser: true });
  if (res.status >= 300) throw httpError('GET', r.url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
  if (res.status !== 206) return res;
  const sent = contentRange(res.headers);
  if (sent?.first !== r.start || sent.last !== last || sent.total !== r.total) {
    await discard(res.body);
    const what = header(res.headers, 'content-range')?.trim();
    throw new PetrelError('TRANSFER_PROTOCOL', `GET ${r.url.href}: asked for bytes ${r.start}-${last}/${r.total}, the server sent ${what ?? 'no Content-Range'}`, { transient: true });
  }
  return res;
}
