import { PetrelError } from '../errors.js';
import { bodyText, header, httpError, networkError, send, type HttpClient } from '../transfer/index.js';

/** What a federation's discovery document says (pelican.md §2); only the director is used. */
export interface FederationInfo {
  director: URL;
}

export interface DiscoveryOptions {
  client: HttpClient;
  ttlMs: number;
  failedTtlMs: number;
  now?: () => number;
}

const ATTEMPTS = 3;

/**
 * `GET https://<host>/.well-known/pelican-configuration`, three tries, the answer kept for
 * `ttlMs` and a failure for `failedTtlMs` (so a federation that is down is not asked once per
 * file). Concurrent asks for one federation share one request.
 */
export function createDiscovery(opts: DiscoveryOptions) {
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { until: number; info?: FederationInfo; error?: PetrelError; pending?: Promise<FederationInfo> }>();

  async function fetchOnce(discovery: URL, signal?: AbortSignal): Promise<FederationInfo> {
    const url = new URL('/.well-known/pelican-configuration', discovery);
    let res;
    try {
      res = await send(opts.client, { method: 'GET', url, headers: { Accept: 'application/json' }, signal });
    } catch (e) {
      throw networkError(e, url);
    }
    const text = await bodyText(res.body, 1 << 20);
    if (res.status !== 200) throw httpError('GET', url, res.status, text, header(res.headers, 'retry-after'));
    let doc: { director_endpoint?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new PetrelError('FEDERATION_UNAVAILABLE', `${url.href} is not a Pelican discovery document (not JSON)`, { hint: `check that ${discovery.host} is a Pelican federation` });
    }
    if (typeof doc.director_endpoint !== 'string') {
      throw new PetrelError('FEDERATION_UNAVAILABLE', `${url.href} names no director_endpoint`, { hint: `check that ${discovery.host} is a Pelican federation` });
    }
    try {
      const director = new URL(doc.director_endpoint);
      if (director.protocol !== 'https:') throw new Error('not https');
      return { director };
    } catch {
      throw new PetrelError('FEDERATION_UNAVAILABLE', `${url.href} names the director ${doc.director_endpoint}, which is not an https URL`, { hint: 'tell the federation operators' });
    }
  }

  async function fetchInfo(discovery: URL, signal?: AbortSignal): Promise<FederationInfo> {
    let last: unknown;
    for (let i = 0; i < ATTEMPTS; i++) {
      try {
        return await fetchOnce(discovery, signal);
      } catch (e) {
        last = e;
        if (!(e instanceof PetrelError) || !e.transient || signal?.aborted) break;
        await new Promise((r) => setTimeout(r, 200 * 2 ** i));
      }
    }
    const e = last instanceof PetrelError ? last : networkError(last, discovery);
    throw new PetrelError('FEDERATION_UNAVAILABLE', `the federation at ${discovery.host} cannot be discovered: ${e.message}`, {
      hint: e.code === 'FEDERATION_UNAVAILABLE' ? e.hint : 'it is retried later; check the federation host (config.json "federations" for osdf)',
      transient: e.transient,
      cause: e,
    });
  }

  return {
    async get(discovery: URL, signal?: AbortSignal): Promise<FederationInfo> {
      const key = discovery.origin;
      const hit = cache.get(key);
      if (hit && (hit.pending || hit.until > now())) {
        if (hit.pending) return hit.pending;
        if (hit.info) return hit.info;
        if (hit.error) throw hit.error;
      }
      const pending = fetchInfo(discovery, signal);
      cache.set(key, { until: 0, pending });
      try {
        const info = await pending;
        cache.set(key, { until: now() + opts.ttlMs, info });
        return info;
      } catch (e) {
        if (signal?.aborted) cache.delete(key);
        else cache.set(key, { until: now() + opts.failedTtlMs, error: e as PetrelError });
        throw e;
      }
    },
  };
}

export type Discovery = ReturnType<typeof createDiscovery>;
