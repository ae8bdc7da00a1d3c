import { PetrelError } from '../errors.js';
import { bodyText, contentLength, discard, header, httpError, networkError, send, type HttpClient, type TransferContext, type TransferResult } from '../transfer/index.js';

/** Pelican's cache prestage API (pelican.md §6). */
const PRESTAGE_API = '/pelican/api/v1.0/prestage';
/** A prestage with no progress for this long is given up on (as Pelican's client does). */
const STALL_MS = 20_000;

/**
 * Whether each cache offers the prestage API, by origin: a bare GET answers 400 (a path is
 * missing) where it does, 404 where it does not. Asked once per cache per agent run.
 */
export function createPrestageProbe(client: HttpClient) {
  const known = new Map<string, Promise<boolean>>();
  return (cache: URL, signal: AbortSignal): Promise<boolean> => {
    let p = known.get(cache.origin);
    if (!p) {
      p = (async () => {
        const res = await send(client, { method: 'GET', url: new URL(PRESTAGE_API, cache), signal }).catch((e: unknown) => {
          throw networkError(e, cache, { beforeReply: true });
        });
        await discard(res.body);
        return res.status === 400;
      })();
      known.set(cache.origin, p);
      p.catch(() => known.delete(cache.origin));
    }
    return p;
  };
}

/**
 * Reads the prestage API's streamed answer: `status: queued`, `status: active,offset=N`, then
 * `success: ok` or `failure: <why>`.
 */
async function followPrestage(client: HttpClient, object: URL, token: string | null, headers: Record<string, string> | undefined, ctx: TransferContext): Promise<TransferResult> {
  const url = new URL(PRESTAGE_API, object);
  url.searchParams.set('path', decodeURIComponent(object.pathname));
  const res = await send(client, { method: 'GET', url, token, headers, idleTimeoutMs: STALL_MS, signal: ctx.signal });
  if (res.status !== 200) throw httpError('GET', url, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
  let offset = 0;
  let rest = '';
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      rest += chunk.toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const raw of lines) {
        const line = raw.trim();
        const active = /^status:\s*active,\s*offset=(\d+)/.exec(line);
        if (active) {
          offset = Number(active[1]);
          ctx.onProgress({ bytesDone: offset, bytesTotal: null });
        } else if (/^success:/.test(line)) {
          await discard(res.body);
          return { bytesDone: offset, bytesTotal: offset };
        } else if (/^failure:/.test(line)) {
          await discard(res.body);
          throw new PetrelError('TRANSFER_SERVER_ERROR', `the cache ${object.origin} could not prestage ${object.pathname}: ${line.slice('failure:'.length).trim()}`, { transient: true });
        }
      }
    }
  } catch (e) {
    throw networkError(e, url);
  }
  throw new PetrelError('TRANSFER_CONNECTION', `the cache ${object.origin} ended its prestage answer for ${object.pathname} without success or failure`, { transient: true });
}

/** Brings an object into a cache: by its prestage API where it has one, else by reading it whole and dropping the bytes. */
export async function prestageAt(
  client: HttpClient,
  probe: ReturnType<typeof createPrestageProbe>,
  object: URL,
  token: string | null,
  headers: Record<string, string> | undefined,
  ctx: TransferContext,
): Promise<TransferResult> {
  if (await probe(object, ctx.signal)) return followPrestage(client, object, token, headers, ctx);
  const res = await send(client, { method: 'GET', url: object, token, headers, signal: ctx.signal });
  if (res.status !== 200) throw httpError('GET', object, res.status, await bodyText(res.body), header(res.headers, 'retry-after'));
  const total = contentLength(res.headers) ?? null;
  let done = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      done += chunk.length;
      ctx.onProgress({ bytesDone: done, bytesTotal: total });
    }
  } catch (e) {
    throw networkError(e, object);
  }
  if (Number.isSafeInteger(total) && done !== total) throw new PetrelError('TRANSFER_CONNECTION', `GET ${object.href}: the connection ended after ${done} of ${total} bytes`, { transient: true });
  return { bytesDone: done, bytesTotal: done };
}
