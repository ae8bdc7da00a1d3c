import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { isErrorCode, PetrelError } from '../errors.js';
import { checkSocket } from '../socket-trust.js';
import { drainedOrClosed } from '../writable.js';
import {
  API_PREFIX,
  ErrorBody,
  Health,
  JobDetail,
  JobEvent,
  JobList,
  JobView,
  NDJSON_TYPE,
  ShutdownReply,
  SubmitJobReply,
  RefreshOutcome,
  TokenReply,
  WalletStatus,
  type TokenRequest,
  type OpenWalletRequest,
  type JobDetailQuery,
  type JobEventsQuery,
  type ListJobsQuery,
  type SubmitJobRequest,
} from './schemas.js';

export interface AgentClientOptions {
  socket: string;
  /** Per request; event streams are exempt. */
  timeoutMs?: number;
}

type Query = Record<string, unknown>;

/** Jobs with more transfers than this are sent as NDJSON. */
const NDJSON_ABOVE = 1000;

/** Transfers serialized per chunk of an NDJSON body. */
const NDJSON_CHUNK = 1000;

/**
 * A job as NDJSON, a chunk at a time: the agent stores the first transfers while later ones are
 * still being serialized, and the whole body (10 MB for 100,000 transfers) is never one string.
 */
function* ndjsonChunks(req: SubmitJobRequest): Generator<string> {
  const { transfers, ...header } = req;
  yield `${JSON.stringify(header)}\n`;
  for (let i = 0; i < transfers.length; i += NDJSON_CHUNK) {
    let chunk = '';
    for (const t of transfers.slice(i, i + NDJSON_CHUNK)) chunk += `${JSON.stringify(t)}\n`;
    yield chunk;
  }
}

/** Writes a body chunk by chunk as the socket takes it, then ends it; stops if the request is torn down. */
async function writeChunks(req: ClientRequest, chunks: Iterable<string>): Promise<void> {
  for (const chunk of chunks) {
    if (req.destroyed) return;
    if (!req.write(chunk)) await drainedOrClosed(req);
  }
  if (!req.destroyed) req.end();
}

function queryString(q: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function unreachable(socket: string, e: unknown): PetrelError {
  const code = (e as { code?: string }).code;
  const why = code === 'ENOENT' ? 'no agent socket' : code === 'ECONNREFUSED' ? 'nothing listens on it' : (e as Error).message;
  return new PetrelError('AGENT_UNREACHABLE', `cannot reach the agent at ${socket}: ${why}`, {
    hint: 'start it with `petrel agent start` (or set PETREL_SOCKET to the socket of a running agent)',
    cause: e,
  });
}

interface RawReply {
  status: number;
  body: IncomingMessage;
}

/** The CLI's typed view of the agent: every reply is parsed with the schema the agent validates with. */
export function createAgentClient(opts: AgentClientOptions) {
  // node:http, not undici: the CLI starts on every command, and loading undici cost it 50 ms.
  const agent = new HttpAgent({ keepAlive: true, keepAliveMsecs: 10_000 });
  const timeout = opts.timeoutMs ?? 30_000;

  /**
   * One request over the socket; `idle` bounds the wait for the reply's start (0: none). A body
   * in chunks goes without Content-Length (chunked).
   */
  function send(method: 'GET' | 'POST', path: string, body: string | Iterable<string> | undefined, idle: number, signal?: AbortSignal, type = 'application/json'): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      // Before anything is sent: passwords and tokens go over this socket.
      try {
        checkSocket(opts.socket);
      } catch (e) {
        reject(e instanceof PetrelError ? e : unreachable(opts.socket, e));
        return;
      }
      const req = httpRequest(
        {
          socketPath: opts.socket,
          host: 'petrel',
          path: `${API_PREFIX}${path}`,
          method,
          agent,
          headers: body === undefined ? {} : typeof body === 'string' ? { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) } : { 'Content-Type': type },
          ...(signal ? { signal } : {}),
        },
        (res) => {
          req.setTimeout(0);
          resolve({ status: res.statusCode ?? 0, body: res });
        },
      );
      if (idle > 0) req.setTimeout(idle, () => req.destroy(Object.assign(new Error(`no answer within ${idle / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(unreachable(opts.socket, e)));
      if (body === undefined || typeof body === 'string') req.end(body);
      else void writeChunks(req, body);
    });
  }

  async function readJson(res: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return undefined;
    }
  }

  async function call<S extends z.ZodType>(schema: S, method: 'GET' | 'POST', path: string, body?: unknown, ndjson?: Iterable<string>): Promise<z.output<S>> {
    const res = await send(method, path, ndjson ?? (body === undefined ? undefined : JSON.stringify(body)), timeout, undefined, ndjson === undefined ? 'application/json' : NDJSON_TYPE);
    const json = await readJson(res.body);
    if (res.status >= 400) {
      const err = ErrorBody.safeParse(json);
      if (!err.success) throw new PetrelError('INTERNAL', `the agent answered ${res.status} without an error body`);
      const { code, message, hint } = err.data.error;
      throw new PetrelError(isErrorCode(code) ? code : 'INTERNAL', message, { hint });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new PetrelError('INTERNAL', `the agent's reply to ${method} ${path} is not what this petrel expects`, {
        hint: 'the agent may be a different version: restart it with `petrel agent stop && petrel agent start`',
      });
    }
    return parsed.data;
  }

  return {
    health: () => call(Health, 'GET', '/health'),
    shutdown: () => call(ShutdownReply, 'POST', '/agent/shutdown'),
    /** Large jobs go as NDJSON, which the agent takes a line at a time instead of holding the whole body. */
    submit: (req: SubmitJobRequest) => (req.transfers.length > NDJSON_ABOVE ? call(SubmitJobReply, 'POST', '/jobs', undefined, ndjsonChunks(req)) : call(SubmitJobReply, 'POST', '/jobs', req)),
    list: (q: ListJobsQuery = {}) => call(JobList, 'GET', `/jobs${queryString(q)}`),
    job: (id: string, q: JobDetailQuery = {}) => call(JobDetail, 'GET', `/jobs/${encodeURIComponent(id)}${queryString(q)}`),
    cancel: (id: string) => call(JobView, 'POST', `/jobs/${encodeURIComponent(id)}/cancel`),
    retry: (id: string) => call(JobView, 'POST', `/jobs/${encodeURIComponent(id)}/retry`),
    wallet: () => call(WalletStatus, 'GET', '/wallet'),
    openWallet: (req: OpenWalletRequest) => call(WalletStatus, 'POST', '/wallet/open', req),
    closeWallet: () => call(WalletStatus, 'POST', '/wallet/close'),
    refreshCredentials: () => call(RefreshOutcome, 'POST', '/credentials/refresh'),
    token: (req: TokenRequest) => call(TokenReply, 'POST', '/tokens', req),

    /** Server-sent events of one job until it ends (or `signal` aborts). */
    async *events(id: string, signal?: AbortSignal, q: JobEventsQuery = {}): AsyncGenerator<JobEvent> {
      const res = await send('GET', `/jobs/${encodeURIComponent(id)}/events${queryString(q)}`, undefined, timeout, signal);
      if (res.status >= 400) {
        const err = ErrorBody.safeParse(await readJson(res.body));
        const info = err.success ? err.data.error : { code: 'INTERNAL', message: `the agent answered ${res.status}` };
        throw new PetrelError(isErrorCode(info.code) ? info.code : 'INTERNAL', info.message, { hint: info.hint });
      }
      let buf = '';
      for await (const chunk of res.body) {
        buf += Buffer.from(chunk as Uint8Array).toString('utf8');
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (!data) continue;
          const ev = JobEvent.safeParse(JSON.parse(data));
          if (ev.success) yield ev.data;
        }
      }
    },

    close: async () => {
      agent.destroy();
    },
  };
}

export type AgentClient = ReturnType<typeof createAgentClient>;
