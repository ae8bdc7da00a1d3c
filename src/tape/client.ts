import { z } from 'zod';
import { PetrelError } from '../errors.js';
import { bodyText, header, httpError, send, type HttpClient, type HttpResponse } from '../transfer/index.js';
import { problemText } from './problem.js';
import { samePath } from './paths.js';

/**
 * The WLCG Tape REST API v1, as a client of it should speak it (protocols.md §3, tape.md):
 * discovery per storage origin, stage, poll, cancel, release, delete and archiveinfo. Replies
 * are read leniently (unknown fields ignored, `onDisk` or `state`, CANCELED or CANCELLED).
 */

export interface TapeEndpoint {
  /** The storage origin the discovery document came from. */
  origin: string;
  /** The API's base, taken from the discovery document as given (dCache: /api/v1/tape). */
  uri: string;
  version: string;
}

export type FileStageStatus = 'pending' | 'on-disk' | 'failed' | 'cancelled';

export interface FileStage {
  path: string;
  status: FileStageStatus;
  /** The storage's own words for a failure. */
  error?: string | undefined;
}

export type Locality = 'DISK' | 'TAPE' | 'DISK_AND_TAPE' | 'NONE' | 'LOST' | 'UNAVAILABLE';

export interface ArchiveInfo {
  path: string;
  locality?: Locality | undefined;
  error?: string | undefined;
}

export interface StageFile {
  path: string;
  /** ISO 8601, only when the user asked for one (parseDiskLifetime). */
  diskLifetime?: string | undefined;
}

export interface TapeClientOptions {
  http: HttpClient;
  /** How long a discovery document is trusted when the storage sends no max-age. */
  discoveryTtlMs?: number;
  /** Files per stage request (dCache refuses more than 500 with 413; a 413 also halves it). */
  maxFilesPerRequest?: number;
  now?: () => number;
}

const Discovery = z.object({
  endpoints: z.array(z.object({ uri: z.string(), version: z.string() }).passthrough()),
}).passthrough();

const StageReply = z.object({ requestId: z.string().min(1) }).passthrough();

const PollReply = z.object({
  id: z.string().optional(),
  files: z.array(
    z.object({
      path: z.string(),
      onDisk: z.boolean().optional(),
      state: z.string().optional(),
      error: z.string().nullish(),
    }).passthrough(),
  ),
}).passthrough();

const ArchiveReply = z.array(z.object({ path: z.string(), locality: z.string().optional(), error: z.string().nullish() }).passthrough());

const LOCALITIES = new Set<string>(['DISK', 'TAPE', 'DISK_AND_TAPE', 'NONE', 'LOST', 'UNAVAILABLE']);
const SUPPORTED_MAJOR = 1;
const REQUEST_TIMEOUT_MS = 60_000;

function fileStatus(f: z.infer<typeof PollReply>['files'][number]): FileStage {
  if (f.error) return { path: f.path, status: 'failed', error: f.error };
  if (f.onDisk !== undefined) return { path: f.path, status: f.onDisk ? 'on-disk' : 'pending' };
  switch ((f.state ?? '').toUpperCase()) {
    case 'COMPLETED':
      return { path: f.path, status: 'on-disk' };
    case 'FAILED':
      return { path: f.path, status: 'failed', error: 'the storage reports the recall failed' };
    case 'CANCELLED':
    case 'CANCELED':
      return { path: f.path, status: 'cancelled' };
    default:
      return { path: f.path, status: 'pending' };
  }
}

function maxAgeMs(res: HttpResponse): number | undefined {
  const m = /max-age=(\d+)/i.exec(header(res.headers, 'cache-control') ?? '');
  return m ? Number(m[1]) * 1000 : undefined;
}

export function createTapeClient(opts: TapeClientOptions) {
  const http = opts.http;
  const now = opts.now ?? Date.now;
  const ttl = opts.discoveryTtlMs ?? 3_600_000;
  let maxFiles = opts.maxFilesPerRequest ?? 500;
  const discovered = new Map<string, { endpoint: TapeEndpoint; until: number }>();

  /** One call; a status of 300 or more throws the storage's words, but for those in `keep`, which are returned. */
  async function call(what: string, method: 'GET' | 'POST' | 'DELETE', url: URL, token: string | null, body?: unknown, keep: readonly number[] = []): Promise<{ status: number; text: string; res: HttpResponse }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const res = await send(http, {
      method,
      url,
      token,
      headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length), Accept: 'application/json' } : { Accept: 'application/json' },
      ...(payload ? { writeBody: (w) => w.end(payload) } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await bodyText(res.body, 1 << 24);
    if (res.status >= 300 && !keep.includes(res.status)) throw httpError(what, url, res.status, problemText(text), header(res.headers, 'retry-after'));
    return { status: res.status, text, res };
  }

  function parse<S extends z.ZodType>(schema: S, text: string, what: string, url: URL): z.output<S> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new PetrelError('TRANSFER_PROTOCOL', `${what} ${url.href}: the answer is not what the WLCG Tape REST API says`, { hint: 'tell the storage operators; the answer was not understood' });
    return parsed.data;
  }

  const at = (endpoint: TapeEndpoint, path: string) => new URL(`${endpoint.uri.replace(/\/+$/, '')}${path}`, endpoint.origin);

  return {
    /** The tape API of the storage serving `url`, from its discovery document (cached per origin). */
    async endpointFor(url: URL, token: string | null): Promise<TapeEndpoint> {
      const origin = url.origin;
      const cached = discovered.get(origin);
      if (cached && cached.until > now()) return cached.endpoint;
      const where = new URL('/.well-known/wlcg-tape-rest-api', origin);
      let reply;
      try {
        reply = await call('discovering the tape API at', 'GET', where, token);
      } catch (e) {
        if (e instanceof PetrelError && (e.code === 'TRANSFER_NOT_FOUND' || e.code === 'TRANSFER_REFUSED')) {
          throw new PetrelError('TAPE_UNSUPPORTED', `this storage offers no tape API: ${where.href} has no WLCG Tape REST API document`, { hint: 'check that the file is on a tape-backed storage; disk-only files need no prestage' });
        }
        throw e;
      }
      const doc = parse(Discovery, reply.text, 'discovering the tape API at', where);
      const usable = doc.endpoints
        .map((e) => ({ ...e, major: Number(/^v(\d+)/i.exec(e.version)?.[1] ?? NaN) }))
        .filter((e) => e.major >= 1 && e.major <= SUPPORTED_MAJOR)
        .sort((a, b) => b.major - a.major)[0];
      if (!usable) throw new PetrelError('TAPE_UNSUPPORTED', `this storage offers no tape API version petrel speaks (v1) at ${where.href}`, { hint: 'upgrade petrel, or tell the storage operators' });
      const uri = new URL(usable.uri, origin);
      // Tokens go to the tape API: only over https from an https storage, and only on its own host (another port, as dCache's 3880, is fine).
      if (uri.hostname !== url.hostname || (url.protocol === 'https:' && uri.protocol !== 'https:')) {
        throw new PetrelError('TAPE_UNSUPPORTED', `the tape API of ${origin} is said to be at ${uri.origin}: not followed, tokens go only to the storage's own host over https`, { hint: 'tell the storage operators' });
      }
      const endpoint: TapeEndpoint = { origin, uri: uri.href, version: usable.version };
      discovered.set(origin, { endpoint, until: now() + (maxAgeMs(reply.res) ?? ttl) });
      return endpoint;
    },

    /**
     * Asks for the files to be recalled: one request per `maxFilesPerRequest` files (a 413 halves
     * the size and sends again). Returns each request's id with the files it holds.
     */
    async stage(endpoint: TapeEndpoint, files: readonly StageFile[], token: string | null): Promise<{ requestId: string; files: StageFile[] }[]> {
      const made: { requestId: string; files: StageFile[] }[] = [];
      let rest = [...files];
      while (rest.length) {
        const batch = rest.slice(0, maxFiles);
        const url = at(endpoint, '/stage');
        const files = batch.map((f) => ({ path: f.path, ...(f.diskLifetime ? { diskLifetime: f.diskLifetime } : {}) }));
        const reply = await call('asking for a tape recall at', 'POST', url, token, { files }, batch.length > 1 ? [413] : []);
        if (reply.status === 413) {
          maxFiles = Math.max(1, Math.floor(batch.length / 2));
          continue;
        }
        made.push({ requestId: parse(StageReply, reply.text, 'asking for a tape recall at', url).requestId, files: batch });
        rest = rest.slice(batch.length);
      }
      return made;
    },

    /** How the files of a request stand; a file the storage does not list is failed. */
    async poll(endpoint: TapeEndpoint, requestId: string, paths: readonly string[], token: string | null): Promise<FileStage[]> {
      const url = at(endpoint, `/stage/${encodeURIComponent(requestId)}`);
      const reply = parse(PollReply, (await call('polling the tape recall', 'GET', url, token)).text, 'polling the tape recall', url);
      return paths.map((path) => {
        const f = reply.files.find((g) => samePath(g.path, path));
        return f ? { ...fileStatus(f), path } : { path, status: 'failed', error: `the storage does not list ${path} in recall ${requestId}` };
      });
    },

    async cancel(endpoint: TapeEndpoint, requestId: string, paths: readonly string[], token: string | null): Promise<void> {
      await call('cancelling the tape recall', 'POST', at(endpoint, `/stage/${encodeURIComponent(requestId)}/cancel`), token, { paths });
    },

    /** Unpins files once they are transferred: the disk copy is the storage's to reclaim. */
    async release(endpoint: TapeEndpoint, requestId: string, paths: readonly string[], token: string | null): Promise<void> {
      await call('releasing recalled files at', 'POST', at(endpoint, `/release/${encodeURIComponent(requestId)}`), token, { paths });
    },

    /** Forgets a finished request at the storage. */
    async remove(endpoint: TapeEndpoint, requestId: string, token: string | null): Promise<void> {
      await call('removing the tape recall', 'DELETE', at(endpoint, `/stage/${encodeURIComponent(requestId)}`), token);
    },

    async archiveInfo(endpoint: TapeEndpoint, paths: readonly string[], token: string | null): Promise<ArchiveInfo[]> {
      const url = at(endpoint, '/archiveinfo');
      const reply = parse(ArchiveReply, (await call('asking where files are at', 'POST', url, token, { paths })).text, 'asking where files are at', url);
      return paths.map((path) => {
        const f = reply.find((g) => samePath(g.path, path));
        if (!f) return { path, error: 'the storage did not answer for this file' };
        if (f.error) return { path, error: f.error };
        return { path, locality: f.locality && LOCALITIES.has(f.locality) ? (f.locality as Locality) : 'UNAVAILABLE' };
      });
    },
  };
}

export type TapeClient = ReturnType<typeof createTapeClient>;
