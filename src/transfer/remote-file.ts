import { redactText } from '../log.js';
import { bodyText, send, type HttpClient } from './http.js';

/**
 * Deletes a remote file; best effort, never throws. Says why when it could not (a token that may
 * create need not be allowed to delete: XRootD 5.5 also wants `storage.read` there).
 */
export async function deleteRemote(client: HttpClient, url: URL, token: string | null): Promise<string | undefined> {
  try {
    const res = await send(client, { method: 'DELETE', url, token, signal: AbortSignal.timeout(10_000) });
    const text = await bodyText(res.body);
    if (res.status < 300 || res.status === 404) return undefined;
    return `the partial file ${url.href} could not be removed (${res.status} ${redactText(text)})`;
  } catch (e) {
    return `the partial file ${url.href} could not be removed (${(e as Error).message})`;
  }
}
