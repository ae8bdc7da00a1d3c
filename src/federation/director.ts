import { PetrelError } from '../errors.js';
import { bodyText, discard, header, httpError, networkError, send, type HttpClient } from '../transfer/index.js';
import { parseIssuers, parseLinks, parseNamespace, parseTokenGeneration, type NamespaceHeader, type TokenGeneration } from './headers.js';

/** The verbs a director routes: reads go to caches, the rest (and `?directread`) to origins. */
export type DirectorVerb = 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'COPY' | 'PROPFIND';

/** One director answer, for one object (pelican.md §3). */
export interface DirectorAnswer {
  /** The servers, best first: `Location`, then the `Link` duplicates by `pri`. */
  servers: URL[];
  namespace: NamespaceHeader;
  /** Issuers whose tokens the namespace accepts. */
  issuers: string[];
  tokenGeneration?: TokenGeneration | undefined;
}

export interface DirectorRequest {
  director: URL;
  verb: DirectorVerb;
  /** The object's path in the federation, percent-encoded. */
  path: string;
  directRead?: boolean;
  /** Sent as `X-Pelican-JobId`, so the federation's logs can tie requests to a job. */
  jobId?: string | undefined;
  /** The federation as the user wrote it, for messages. */
  federation: string;
  signal?: AbortSignal | undefined;
}

const WRITES = new Set<DirectorVerb>(['PUT', 'DELETE', 'COPY']);

/** Asks the director where `path` is, without following its redirect. */
export async function askDirector(client: HttpClient, req: DirectorRequest): Promise<DirectorAnswer> {
  const url = new URL(`${req.director.href.replace(/\/+$/, '')}${req.path}`);
  if (req.directRead) url.search = '?directread';
  const where = `${req.federation}${req.path}`;
  let res;
  try {
    res = await send(client, {
      method: req.verb,
      url,
      headers: req.jobId ? { 'X-Pelican-JobId': req.jobId } : {},
      followRedirects: false,
      signal: req.signal,
    });
  } catch (e) {
    throw networkError(e, url);
  }
  const status = res.status;
  if (status >= 300 && status < 400) {
    await discard(res.body);
    const location = header(res.headers, 'location');
    const namespace = parseNamespace(res.headers['x-pelican-namespace']);
    if (!location || !namespace) {
      throw new PetrelError('TRANSFER_PROTOCOL', `the director of ${req.federation} answered ${status} for ${req.path} without ${location ? 'X-Pelican-Namespace' : 'Location'}`, { hint: 'tell the federation operators' });
    }
    const first = new URL(location, url);
    const servers = [first, ...parseLinks(res.headers.link).map((l) => l.url).filter((u) => u.href !== first.href)];
    return { servers, namespace, issuers: parseIssuers(res.headers['x-pelican-authorization']), tokenGeneration: parseTokenGeneration(res.headers['x-pelican-token-generation']) };
  }
  const text = await bodyText(res.body);
  if (status === 404) {
    throw new PetrelError('FEDERATION_NOT_FOUND', `no namespace of ${req.federation} serves ${req.path}${text ? ` (the director says: ${text})` : ''}`, { hint: `check the path; \`petrel ls ${req.federation}/<namespace>/\` lists what is there` });
  }
  if (status === 405 && WRITES.has(req.verb)) {
    throw new PetrelError('FEDERATION_READ_ONLY', `no origin of ${req.federation} takes writes under ${req.path} (${req.verb} answered 405)`, { hint: 'the namespace is read-only here: write to its origin storage directly, or ask the federation operators' });
  }
  if (status === 429) {
    const err = httpError(req.verb, url, status, text || 'the director is starting up', header(res.headers, 'retry-after'));
    throw new PetrelError('TRANSFER_THROTTLED', `the director of ${req.federation} asks to wait (429): ${text || 'it has just started'}`, { transient: true, retryAfterMs: err.retryAfterMs ?? 5_000, hint: 'retried by itself' });
  }
  if (status === 401) {
    const challenge = header(res.headers, 'www-authenticate');
    throw new PetrelError('TRANSFER_DENIED', `the director of ${req.federation} refused the token for ${where}${challenge ? ` (${challenge})` : ''}: it has expired or is about to`, { hint: `log in again with \`petrel warm ${where}\`` });
  }
  throw httpError(`${req.verb} (director)`, url, status, text, header(res.headers, 'retry-after'));
}
