import type { ChecksumAlgorithm } from './checksum.js';
import { serverDigest, wantDigestHeader } from './digest.js';
import { discard, send, type HttpClient } from './http.js';

/**
 * The server's digest of a whole file, asked with HEAD + `Want-Digest`, at most one such request
 * per origin at a time: XRootD 5.5 crashes (SIGSEGV) when it computes checksums for several HTTP
 * requests at once. Undefined when the server will not say (e.g. a token that may write, not read).
 */
export async function remoteDigest(client: HttpClient, url: URL, token: string | null, algo: ChecksumAlgorithm, signal: AbortSignal): Promise<string | undefined> {
  return client.oneAtATime(url.origin, async () => {
    const head = await send(client, { method: 'HEAD', url, token, headers: { 'Want-Digest': wantDigestHeader(algo) }, signal });
    await discard(head.body);
    return head.status === 200 ? serverDigest(head.headers.digest, algo) : undefined;
  }, signal);
}
