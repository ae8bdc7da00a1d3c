// A STAND-IN for a WLCG Tape REST API v1 endpoint: no tape system runs on this machine, so tests
// of tape recall talk to this HTTPS server (test bed certificate, closed when the test ends).
// Outside a vitest test (the benchmark) start it with `autoClose: false` and close() it.
//
// Faithful to: the v1 reference document (discovery, stage, poll, cancel, DELETE, release,
// archiveinfo, RFC 7807 errors, 404 for unknown ids, files already on disk accepted, file order
// not guaranteed: polls answer in a shuffled order) and to the answers of real servers as
// /work/shared/docs/tape.md records them, one dialect each:
//   dcache  uri /api/v1/tape; `state`; milliseconds; per-file `error`; > 500 files → 413; > 5,000
//           unfinished requests a user → 429; archiveinfo truncated at 10,000 paths; `status` a
//           string in error bodies; cancel with a foreign path → 400 with an empty body (the
//           detail in the reason phrase); unknown top-level key in a stage body → 400;
//           diskLifetime must be a java.time.Duration (P1W → 400); absolute Location.
//   storm   uri /api/v1; `state`; seconds, 0 while unset (completedAt too); no per-file `error`;
//           cancel and release with a foreign path → 400 problem+json; relative Location.
//   eos     uri /api/v1; `onDisk` instead of `state`; seconds; startedAt = createdAt; no
//           completedAt nor per-file times; per-file `error`; no Location header.
// Tokens are verified for real (jose, the test bed issuer's key, ES256, issuer, audience): WLCG
// scopes, on path-component boundaries; `storage.stage` does not imply read (profile 1.2);
// archiveinfo takes `storage.stage` or `storage.poll`; file GET/HEAD take `storage.read`.
//
// Limits: one origin serves discovery, the tape API and the files (dCache has the API on its own
// port); files live in memory; a file comes on disk `delayMs` after the first stage request naming
// it and stays pinned until a release (no pin lifetime, no eviction); a file being recalled is
// STARTED at once (never SUBMITTED); release returns the file to TAPE whatever other requests pin
// it; no DISK (disk-only) or UNAVAILABLE locality; no targetedMetadata; no request retention.
// A GET of a file not on disk answers 503 without Retry-After ("on tape only: stage it first");
// HEAD answers from the namespace (size, Digest) wherever the file is, as dCache and XRootD do.
import { createPrivateKey, createPublicKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { jwtVerify, type JWTPayload } from 'jose';
import { checksumOf } from '../../src/transfer/checksum.js';
import type { TestbedInfo } from '../testbed/index.js';
import { standIn, type Handler } from './stand-in.js';

export type TapeDialect = 'dcache' | 'storm' | 'eos';
export type Locality = 'DISK' | 'TAPE' | 'DISK_AND_TAPE' | 'NONE' | 'LOST' | 'UNAVAILABLE';
export type StageState = 'SUBMITTED' | 'STARTED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface TapeServerOptions {
  dialect?: TapeDialect;
  /** Accepted in tokens beside the server's own url and WLCG's "any"; default `tb.audience`. */
  audience?: string;
  /** More files in one stage request → 413; default 500 for dcache, unlimited otherwise. */
  maxFilesPerRequest?: number;
  /** Unfinished stage requests a `sub` may have, beyond which → 429; default 5000 for dcache, unlimited otherwise. */
  maxUnfinishedRequests?: number;
  /** Time from a file's first stage request until it is on disk; default 0. */
  defaultDelayMs?: number;
  /** false: the well-known document answers 404 (a storage without a tape API); default true. */
  discovery?: boolean;
  /** Cache-Control max-age (seconds) of the well-known document (StoRM: 21600); none by default. */
  discoveryMaxAge?: number;
  /**
   * false: not closed when the test ends (vitest's onTestFinished cannot be called outside a
   * test, e.g. in the benchmark run by plain node): the caller closes it; default true.
   */
  autoClose?: boolean;
}

export interface TapeFileOptions {
  /** The bytes, or a size of random bytes; default 1 KiB. */
  content?: Buffer | number;
  /** Time from its stage request until on disk; default the server's defaultDelayMs. */
  delayMs?: number;
  /** Each stage of this file fails with this message once its delay has passed. */
  fail?: string;
  onDisk?: boolean;
  lost?: boolean;
}

/** The claims of the token a stage request came with. */
export interface TokenSummary { sub?: string; scope?: string; jti?: string; client_id?: string; azp?: string }

export interface AcceptedStage {
  id: string;
  at: number;
  /** Collapsed, without duplicates. */
  files: string[];
  /** The first diskLifetime any file of the request carried. */
  diskLifetime?: string;
  token: TokenSummary;
}

/** Counters count calls received, whatever was answered; `requests` holds accepted stage requests only. */
export interface TapeStats {
  discovery: number; stageRequests: number; polls: number; cancels: number; releases: number; deletes: number; archiveinfo: number;
  /** GET and HEAD of files. */
  fileReads: number;
  /** Answers 401, 403, 413 and 429. */
  refused: number;
  requests: AcceptedStage[];
  /** The paths of accepted cancel calls (also those that had already ended). */
  cancelledPaths: string[];
  /** The paths of accepted release calls that belonged to their request. */
  releasedPaths: string[];
}

export interface TapeServer {
  /** The origin, `https://localhost:PORT`; files are at `${url}${path}`. */
  url: string;
  /** The tape API uri discovery announces. */
  uri: string;
  dialect: TapeDialect;
  readonly stats: TapeStats;
  addFile(path: string, opts?: TapeFileOptions): void;
  /** Polls (and everything else) of that request answer 404 from now on. */
  forget(requestId: string): void;
  /** Every call answers 503 (with Retry-After) for `ms`. */
  unavailable(ms: number): void;
  /** Also moves the end of a recall under way (0: on disk now). */
  setDelay(path: string, ms: number): void;
  /** How many accepted stage requests named `path`. */
  timesStaged(path: string): number;
  resetStats(): void;
  close(): Promise<void>;
}

interface DialectRules {
  prefix: string;
  maxFiles: number;
  maxUnfinished: number;
  archiveinfoLimit: number;
  strictBody: boolean;
  foreignCancel: 'bare' | 'problem';
  foreignRelease: 'ignore' | 'problem';
  location: 'absolute' | 'relative' | 'none';
}

const RULES: Record<TapeDialect, DialectRules> = {
  dcache: { prefix: '/api/v1/tape', maxFiles: 500, maxUnfinished: 5000, archiveinfoLimit: 10_000, strictBody: true, foreignCancel: 'bare', foreignRelease: 'ignore', location: 'absolute' },
  storm: { prefix: '/api/v1', maxFiles: Infinity, maxUnfinished: Infinity, archiveinfoLimit: Infinity, strictBody: false, foreignCancel: 'problem', foreignRelease: 'problem', location: 'relative' },
  eos: { prefix: '/api/v1', maxFiles: Infinity, maxUnfinished: Infinity, archiveinfoLimit: Infinity, strictBody: false, foreignCancel: 'problem', foreignRelease: 'ignore', location: 'none' },
};

const ANY_AUDIENCE = 'https://wlcg.cern.ch/jwt/v1/any';
const REFUSALS = new Set([401, 403, 413, 429]);
// java.time.Duration.parse: days at most, at least one component, nothing after a bare T.
const JAVA_DURATION = /^[-+]?P(?=\d|[-+]|T\d|T[-+])(?:[-+]?\d+D)?(?:T(?=[-+]?\d)(?:[-+]?\d+H)?(?:[-+]?\d+M)?(?:[-+]?\d+(?:[.,]\d{0,9})?S)?)?$/i;

/** A recall from tape (or an outcome known at once): shared by every request that waits for it. */
interface Recall { startedAt: number; endsAt: number; error?: string }

interface TapeFile {
  content: Buffer;
  delayMs: number;
  fail?: string;
  lost: boolean;
  /** On disk from the start, until released. */
  disk: boolean;
  recall?: Recall;
}

interface Entry { path: string; recall: Recall; cancelledAt?: number }
interface StageRequest { id: string; createdAt: number; sub: string; entries: Map<string, Entry> }
interface Caller { scopes: string[]; token: TokenSummary }

type Op = 'stage' | 'poll' | 'cancel' | 'delete' | 'release' | 'archiveinfo';
type Counter = { [K in keyof TapeStats]: TapeStats[K] extends number ? K : never }[keyof TapeStats];
const COUNTER: Record<Op, Counter> = { stage: 'stageRequests', poll: 'polls', cancel: 'cancels', delete: 'deletes', release: 'releases', archiveinfo: 'archiveinfo' };

class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
    /** dCache's foreign-path cancel: no body, the detail in the reason phrase. */
    readonly bare = false,
  ) {
    super(detail);
  }
}

const collapse = (path: string): string => path.replace(/\/{2,}/g, '/');
const seconds = (ms: number): number => Math.floor(ms / 1000);

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A WLCG scope path covers itself and what lies below it, on component boundaries. */
function covers(scopes: string[], names: string[], path: string): boolean {
  return scopes.some((s) => {
    const colon = s.indexOf(':');
    if (colon < 0 || !names.includes(s.slice(0, colon))) return false;
    const base = collapse(s.slice(colon + 1)).replace(/(.)\/$/, '$1');
    return base === '/' || path === base || path.startsWith(`${base}/`);
  });
}

function requireScope(caller: Caller, names: string[], paths: Iterable<string>): void {
  for (const path of paths) {
    if (!covers(caller.scopes, names, path)) throw new Problem(403, 'Forbidden', `the token's scopes allow no ${names.join(' or ')} of ${path}`);
  }
}

function publicKey(tb: TestbedInfo): KeyObject {
  const jwk = JSON.parse(readFileSync(tb.issuer.keyFile, 'utf8')) as Record<string, string>;
  return createPublicKey(createPrivateKey({ key: jwk, format: 'jwk' }));
}

function summary(p: JWTPayload): TokenSummary {
  const out: TokenSummary = {};
  for (const k of ['sub', 'scope', 'jti', 'client_id', 'azp'] as const) {
    if (typeof p[k] === 'string') out[k] = p[k];
  }
  return out;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new Problem(400, 'Bad Request', 'the body is not JSON');
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parsePaths(body: unknown): string[] {
  const paths = isObject(body) ? body.paths : undefined;
  if (!Array.isArray(paths) || !paths.every((p): p is string => typeof p === 'string' && p !== '')) {
    throw new Problem(400, 'Bad Request', 'expected {"paths": [string, ...]}');
  }
  return [...new Set(paths.map(collapse))];
}

function parseStage(body: unknown, rules: DialectRules): { paths: string[]; diskLifetime?: string } {
  const files = isObject(body) ? body.files : undefined;
  if (!isObject(body) || !Array.isArray(files) || files.length === 0) throw new Problem(400, 'Bad Request', 'expected {"files": [{"path": ...}, ...]}');
  const extra = Object.keys(body).find((k) => k !== 'files');
  if (rules.strictBody && extra !== undefined) throw new Problem(400, 'Bad Request', `Unrecognized field "${extra}"`);
  let diskLifetime: string | undefined;
  const paths = files.map((f: unknown) => {
    if (!isObject(f) || typeof f.path !== 'string' || f.path === '') throw new Problem(400, 'Bad Request', 'every file needs a "path"');
    if (f.diskLifetime !== undefined) {
      if (typeof f.diskLifetime !== 'string') throw new Problem(400, 'Bad Request', 'diskLifetime must be a string');
      if (rules.strictBody && !JAVA_DURATION.test(f.diskLifetime)) throw new Problem(400, 'Bad Request', `Text cannot be parsed to a Duration: ${f.diskLifetime}`);
      diskLifetime ??= f.diskLifetime;
    }
    return collapse(f.path);
  });
  return { paths: [...new Set(paths)], ...(diskLifetime === undefined ? {} : { diskLifetime }) };
}

/** A request's file as of `now`; finishedAt set once it has ended. */
function entryState(e: Entry, createdAt: number, now: number): { state: StageState; finishedAt?: number; error?: string } {
  if (e.cancelledAt !== undefined) return { state: 'CANCELLED', finishedAt: e.cancelledAt };
  if (now < e.recall.endsAt) return { state: 'STARTED' };
  const finishedAt = Math.max(e.recall.endsAt, createdAt);
  return e.recall.error === undefined ? { state: 'COMPLETED', finishedAt } : { state: 'FAILED', finishedAt, error: e.recall.error };
}

function renderStatus(dialect: TapeDialect, r: StageRequest, now: number): Record<string, unknown> {
  const files = shuffled([...r.entries.values()]).map((e) => ({ path: e.path, ...entryState(e, r.createdAt, now) }));
  const done = files.every((f) => f.finishedAt !== undefined);
  const completedAt = done ? files.reduce((max, f) => Math.max(max, f.finishedAt ?? 0), r.createdAt) : undefined;
  const opt = <T>(key: string, v: T | undefined) => (v === undefined ? {} : { [key]: v });
  switch (dialect) {
    case 'dcache':
      return {
        id: r.id, createdAt: r.createdAt, startedAt: r.createdAt, ...opt('completedAt', completedAt),
        files: files.map((f) => ({ path: f.path, state: f.state, startedAt: r.createdAt, ...opt('finishedAt', f.finishedAt), ...opt('error', f.error) })),
      };
    case 'storm': {
      const s = (ms: number | undefined) => (ms === undefined ? 0 : seconds(ms));
      return {
        id: r.id, createdAt: s(r.createdAt), startedAt: s(r.createdAt), completedAt: s(completedAt),
        files: files.map((f) => ({ path: f.path, state: f.state, startedAt: s(r.createdAt), finishedAt: s(f.finishedAt) })),
      };
    }
    case 'eos':
      return {
        id: r.id, createdAt: seconds(r.createdAt), startedAt: seconds(r.createdAt),
        files: files.map((f) => ({ path: f.path, onDisk: f.state === 'COMPLETED', ...opt('error', f.error) })),
      };
  }
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined (the whole file) for none or several ranges. */
function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const start = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
  const end = m[1] === '' || m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

/** RFC 3230, as XRootD answers: adler32 and crc32c in hex, md5 in base64; the first known name wins. */
function digestHeader(want: string | string[] | undefined, content: Buffer): Record<string, string> {
  const names = [want ?? ''].flat().join(',').split(',').map((s) => (s.split(';')[0] ?? '').trim().toLowerCase());
  const algo = names.find((n): n is 'adler32' | 'md5' | 'crc32c' => n === 'adler32' || n === 'md5' || n === 'crc32c');
  if (!algo) return {};
  const hex = checksumOf(algo, content);
  return { Digest: `${algo}=${algo === 'md5' ? Buffer.from(hex, 'hex').toString('base64') : hex}` };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers }).end(text);
}

function sendProblem(res: ServerResponse, p: Problem, dialect: TapeDialect): void {
  if (p.bare) {
    res.writeHead(p.status, p.detail.replace(/[^\x20-\x7e]/g, '?'), { 'Content-Length': 0, ...p.headers }).end();
    return;
  }
  // dCache writes `status` as a string.
  const text = JSON.stringify({ title: p.title, status: dialect === 'dcache' ? String(p.status) : p.status, detail: p.detail });
  res.writeHead(p.status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(text), ...p.headers }).end(text);
}

/** standIn's server, without registering its close with vitest: closed by its owner only. */
async function unmanagedServer(tb: Pick<TestbedInfo, 'tls'>, handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer({ cert: readFileSync(tb.tls.certFile), key: readFileSync(tb.tls.keyFile) }, handler);
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, server };
}

export async function startTapeServer(tb: TestbedInfo, opts: TapeServerOptions = {}): Promise<TapeServer> {
  const dialect = opts.dialect ?? 'dcache';
  const rules = RULES[dialect];
  const maxFiles = opts.maxFilesPerRequest ?? rules.maxFiles;
  const maxUnfinished = opts.maxUnfinishedRequests ?? rules.maxUnfinished;
  const key = publicKey(tb);
  const files = new Map<string, TapeFile>();
  const live = new Map<string, StageRequest>();
  const fresh = (): TapeStats => ({ discovery: 0, stageRequests: 0, polls: 0, cancels: 0, releases: 0, deletes: 0, archiveinfo: 0, fileReads: 0, refused: 0, requests: [], cancelledPaths: [], releasedPaths: [] });
  let stats = fresh();
  let downUntil = 0;

  const { url, server } = await (opts.autoClose === false ? unmanagedServer : standIn)(tb, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const p = e instanceof Problem ? e : new Problem(500, 'Internal Server Error', String(e));
      if (REFUSALS.has(p.status)) stats.refused++;
      if (!res.headersSent) sendProblem(res, p, dialect);
      else res.destroy();
    });
  });
  const uri = `${url}${rules.prefix}`;
  const audience = [opts.audience ?? tb.audience, url, ANY_AUDIENCE];

  const onDisk = (f: TapeFile, now: number): boolean => f.disk || (f.recall !== undefined && f.recall.error === undefined && now >= f.recall.endsAt);

  function locality(f: TapeFile, now: number): Locality {
    if (f.lost) return 'LOST';
    if (f.content.length === 0) return 'NONE';
    return onDisk(f, now) ? 'DISK_AND_TAPE' : 'TAPE';
  }

  /** What a new stage request waits for: an outcome known now, the recall under way, or a new one. */
  function recallFor(path: string, now: number): Recall {
    const f = files.get(path);
    if (!f) return { startedAt: now, endsAt: now, error: 'No such file or directory' };
    if (f.lost) return { startedAt: now, endsAt: now, error: 'File is lost: no readable copy on tape' };
    if (onDisk(f, now)) return { startedAt: now, endsAt: now };
    if (f.recall && now < f.recall.endsAt) return f.recall;
    f.recall = { startedAt: now, endsAt: now + f.delayMs, ...(f.fail === undefined ? {} : { error: f.fail }) };
    return f.recall;
  }

  /** Stops a file's recall once no live request waits for it any more. */
  function abandon(path: string, recall: Recall): void {
    const f = files.get(path);
    if (f?.recall !== recall) return;
    const waited = [...live.values()].some((r) => {
      const e = r.entries.get(path);
      return e?.recall === recall && e.cancelledAt === undefined;
    });
    if (!waited) delete f.recall;
  }

  function cancelEntries(r: StageRequest, paths: string[], now: number): void {
    for (const path of paths) {
      const e = r.entries.get(path);
      if (!e || e.cancelledAt !== undefined || now >= e.recall.endsAt) continue;
      e.cancelledAt = now;
      abandon(path, e.recall);
    }
  }

  function foreignPaths(r: StageRequest, paths: string[], how: 'bare' | 'problem' | 'ignore'): string[] {
    const foreign = paths.filter((p) => !r.entries.has(p));
    if (foreign.length === 0 || how === 'ignore') return paths.filter((p) => r.entries.has(p));
    const detail = `The file(s) ${foreign.join(', ')} do(es) not belong to the STAGE request ${r.id}. No modification has been made to this request.`;
    throw new Problem(400, 'File missing from stage request', detail, {}, how === 'bare');
  }

  function stage(body: unknown, caller: Caller, res: ServerResponse): void {
    const { paths, diskLifetime } = parseStage(body, rules);
    if (paths.length > maxFiles) throw new Problem(413, 'Payload Too Large', `${paths.length} files: at most ${maxFiles} per request`);
    requireScope(caller, ['storage.stage'], paths);
    const sub = caller.token.sub ?? '';
    const now = Date.now();
    const unfinished = [...live.values()].filter((r) => r.sub === sub && [...r.entries.values()].some((e) => entryState(e, r.createdAt, now).finishedAt === undefined));
    if (unfinished.length >= maxUnfinished) throw new Problem(429, 'Too Many Requests', `${unfinished.length} unfinished stage requests: at most ${maxUnfinished}`);
    const r: StageRequest = { id: randomUUID(), createdAt: now, sub, entries: new Map(paths.map((p) => [p, { path: p, recall: recallFor(p, now) }])) };
    live.set(r.id, r);
    stats.requests.push({ id: r.id, at: now, files: paths, ...(diskLifetime === undefined ? {} : { diskLifetime }), token: caller.token });
    const location = { absolute: `${uri}/stage/${r.id}`, relative: `${rules.prefix}/stage/${r.id}`, none: undefined }[rules.location];
    sendJson(res, 201, { requestId: r.id }, location === undefined ? {} : { Location: location });
  }

  function release(r: StageRequest, paths: string[], now: number): void {
    for (const path of foreignPaths(r, paths, rules.foreignRelease)) {
      const f = files.get(path);
      stats.releasedPaths.push(path);
      if (!f || !onDisk(f, now)) continue;
      f.disk = false;
      delete f.recall;
    }
  }

  function archiveinfo(paths: string[], now: number): unknown[] {
    return paths.slice(0, rules.archiveinfoLimit).map((path) => {
      const f = files.get(path);
      return f ? { path, locality: locality(f, now) } : { path, error: 'No such file or directory' };
    });
  }

  async function authenticate(req: IncomingMessage): Promise<Caller> {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const challenge = { 'WWW-Authenticate': 'Bearer' };
    if (!m?.[1]) throw new Problem(401, 'Unauthorized', 'a bearer token is required', challenge);
    try {
      const { payload } = await jwtVerify(m[1], key, { issuer: [tb.issuer.url, tb.idp.url], audience, algorithms: ['ES256'] });
      return { scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [], token: summary(payload) };
    } catch (e) {
      throw new Problem(401, 'Unauthorized', `invalid token: ${(e as Error).message}`, challenge);
    }
  }

  function route(method: string, sub: string): { op: Op; id?: string } | undefined {
    const m = /^\/(stage|release)\/([^/]+)(\/cancel)?$/.exec(sub);
    const id = m?.[2] === undefined ? undefined : decodeURIComponent(m[2]);
    if (sub === '/stage' && method === 'POST') return { op: 'stage' };
    if (sub === '/archiveinfo' && method === 'POST') return { op: 'archiveinfo' };
    if (m?.[1] === 'release' && !m[3] && method === 'POST') return { op: 'release', id };
    if (m?.[1] !== 'stage') return undefined;
    if (m[3]) return method === 'POST' ? { op: 'cancel', id } : undefined;
    if (method === 'GET') return { op: 'poll', id };
    return method === 'DELETE' ? { op: 'delete', id } : undefined;
  }

  function requestOf(id: string | undefined): StageRequest {
    const r = id === undefined ? undefined : live.get(id);
    if (!r) throw new Problem(404, 'Not Found', `no stage request ${id ?? ''}`);
    return r;
  }

  async function tapeCall(op: Op, id: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const caller = await authenticate(req);
    const now = Date.now();
    if (op === 'stage') return stage(await readJson(req), caller, res);
    if (op === 'archiveinfo') {
      const paths = parsePaths(await readJson(req));
      requireScope(caller, ['storage.stage', 'storage.poll'], paths);
      return sendJson(res, 200, archiveinfo(paths, now));
    }
    const r = requestOf(id);
    const paths = op === 'cancel' || op === 'release' ? parsePaths(await readJson(req)) : [...r.entries.keys()];
    requireScope(caller, ['storage.stage'], paths);
    if (op === 'poll') return sendJson(res, 200, renderStatus(dialect, r, now));
    if (op === 'cancel') {
      foreignPaths(r, paths, rules.foreignCancel);
      cancelEntries(r, paths, now);
      stats.cancelledPaths.push(...paths);
    } else if (op === 'release') {
      release(r, paths, now);
    } else {
      cancelEntries(r, paths, now);
      live.delete(r.id);
    }
    res.writeHead(200, { 'Content-Length': 0 }).end();
  }

  async function serveFile(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    const path = collapse(decodeURIComponent(rawPath));
    requireScope(await authenticate(req), ['storage.read'], [path]);
    const f = files.get(path);
    if (!f) throw new Problem(404, 'Not Found', `${path}: no such file or directory`);
    const size = f.content.length;
    const headers = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...digestHeader(req.headers['want-digest'], f.content) };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'Content-Length': size }).end();
      return;
    }
    if (!onDisk(f, Date.now())) throw new Problem(503, 'Service Unavailable', `${path} is ${f.lost ? 'lost' : 'on tape only (NEARLINE)'}: stage it first`);
    const range = byteRange(req.headers.range, size);
    if (range === 'unsatisfiable') throw new Problem(416, 'Range Not Satisfiable', `${req.headers.range ?? ''} of ${size} bytes`, { 'Content-Range': `bytes */${size}` });
    if (!range) {
      res.writeHead(200, { ...headers, 'Content-Length': size }).end(f.content);
      return;
    }
    const body = f.content.subarray(range.start, range.end + 1);
    res.writeHead(206, { ...headers, 'Content-Length': body.length, 'Content-Range': `bytes ${range.start}-${range.end}/${size}` }).end(body);
  }

  function discovery(res: ServerResponse): void {
    if (opts.discovery === false) throw new Problem(404, 'Not Found', 'no tape REST API here');
    const doc = { sitename: `petrel-tape-${dialect}`, description: `Petrel's tape stand-in (${dialect} dialect)`, endpoints: [{ uri, version: 'v1', metadata: {} }] };
    sendJson(res, 200, doc, opts.discoveryMaxAge === undefined ? {} : { 'Cache-Control': `max-age=${opts.discoveryMaxAge}` });
  }

  function checkAvailable(): void {
    const left = downUntil - Date.now();
    if (left > 0) throw new Problem(503, 'Service Unavailable', 'the tape system is down for maintenance', { 'Retry-After': String(Math.ceil(left / 1000)) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', url).pathname;
    if (path === '/.well-known/wlcg-tape-rest-api' && method === 'GET') {
      stats.discovery++;
      checkAvailable();
      return discovery(res);
    }
    if (path.startsWith(`${rules.prefix}/`)) {
      const call = route(method, path.slice(rules.prefix.length));
      if (!call) throw new Problem(404, 'Not Found', `no ${method} ${path} in the tape REST API v1`);
      stats[COUNTER[call.op]]++;
      checkAvailable();
      return tapeCall(call.op, call.id, req, res);
    }
    if (method !== 'GET' && method !== 'HEAD') throw new Problem(405, 'Method Not Allowed', `${method} is not served here`);
    stats.fileReads++;
    checkAvailable();
    return serveFile(req, res, path);
  }

  return {
    url,
    uri,
    dialect,
    get stats() {
      return stats;
    },
    addFile(path, o = {}) {
      const content = typeof o.content === 'number' ? randomBytes(o.content) : (o.content ?? randomBytes(1024));
      files.set(collapse(path), { content, delayMs: o.delayMs ?? opts.defaultDelayMs ?? 0, lost: o.lost ?? false, disk: o.onDisk ?? false, ...(o.fail === undefined ? {} : { fail: o.fail }) });
    },
    forget: (id) => void live.delete(id),
    unavailable(ms) {
      downUntil = Date.now() + ms;
    },
    setDelay(path, ms) {
      const f = files.get(collapse(path));
      if (!f) throw new Error(`tape stand-in: no file ${path}`);
      f.delayMs = ms;
      if (f.recall && Date.now() < f.recall.endsAt) f.recall.endsAt = f.recall.startedAt + ms;
    },
    timesStaged: (path) => stats.requests.filter((r) => r.files.includes(collapse(path))).length,
    resetStats() {
      stats = fresh();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
