import { PetrelError } from '../errors.js';
import type { ChecksumAlgorithm } from './checksum.js';
import { serverDigest, wantDigestHeader } from './digest.js';
import { discard, send, type HttpClient } from './http.js';

/** A server computes a checksum at disk speed: give it that much time, and never less than the idle timeout. */
function digestTimeoutMs(client: HttpClient, size: number | null): number {
  return Math.max(client.idleTimeoutMs, ((size ?? 0) / (25 * 1024 * 1024)) * 1000);
}

/**
 * The server's digest of a whole file, asked with HEAD + `Want-Digest`, at most one such request
 * per origin at a time: XRootD 5.5 crashes (SIGSEGV) when it computes checksums for several HTTP
 * requests at once, and may hang on one; a request that takes too long fails as transient.
 * Undefined when the server will not say (e.g. a token that may write but not read).
 */
export async function remoteDigest(
  client: HttpClient,
  url: URL,
  token: string | null,
  algo: ChecksumAlgorithm,
  signal: AbortSignal,
  size: number | null,
  opts: { keepAlive?: boolean } = {},
): Promise<string | undefined> {
  return client.oneAtATime(
    url.origin,
    async () => {
      const limit = digestTimeoutMs(client, size);
      try {
        const head = await send(client, { method: 'HEAD', url, token, headers: { 'Want-Digest': wantDigestHeader(algo) }, signal, idleTimeoutMs: limit, keepAlive: opts.keepAlive });
        await discard(head.body);
        return head.status === 200 ? serverDigest(head.headers.digest, algo) : undefined;
      } catch (e) {
        if (e instanceof PetrelError && e.code === 'TRANSFER_TIMEOUT') {
          throw new PetrelError('TRANSFER_TIMEOUT', `${url.host} did not report the ${algo} of ${url.pathname} within ${Math.round(limit / 1000)} s`, { transient: true, cause: e });
        }
        throw e;
      }
    },
    signal,
  );
}
