import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PetrelError, type ErrorCode } from '../errors.js';
import { packageRoot } from '../package-root.js';
import type { ChecksumAlgorithm } from './checksum.js';

/** One range of a download, fetched by a worker thread into the part file's descriptor. */
export interface RangeJob {
  url: string;
  /** Sent as `Authorization: Bearer` (only to `url`'s origin, redirects drop it). */
  token: string | null;
  headers: Record<string, string>;
  allowInsecureRedirect: boolean;
  fd: number;
  /** The part file's name, for error messages. */
  path: string;
  start: number;
  /** Exclusive. */
  end: number;
  /** The file's size, which the reply's Content-Range must name. */
  total: number;
  algo: ChecksumAlgorithm | undefined;
  /** Read straight off a TLS connection when https (direct-range.ts); else through node:https. */
  direct: boolean;
}

export interface RangeOutcome {
  /** Bytes written from `start` on, in order (also when it failed: what a resume may keep). */
  written: number;
  digest?: string | undefined;
}

/** What crosses to the worker: the job, or the word to stop it. */
export type ToWorker = { type: 'fetch'; id: number; job: RangeJob } | { type: 'abort'; id: number };

export interface WireError {
  code: string;
  message: string;
  hint?: string | undefined;
  transient?: boolean | undefined;
  retryAfterMs?: number | undefined;
  unanswered?: boolean | undefined;
}

export type FromWorker =
  | { type: 'progress'; id: number; bytes: number }
  | { type: 'done'; id: number; written: number; digest?: string | undefined }
  | { type: 'failed'; id: number; written: number; error: WireError };

/** The HTTP client settings a worker builds its own client from (connections cannot cross threads). */
export interface WorkerClientOptions {
  caFile?: string | undefined;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
}

export class RangeFailure extends PetrelError {
  constructor(
    error: WireError,
    readonly written: number,
  ) {
    super(error.code as ErrorCode, error.message, {
      hint: error.hint,
      transient: error.transient,
      retryAfterMs: error.retryAfterMs,
      unanswered: error.unanswered,
    });
  }
}

/** A range's run: its outcome, and the way to stop it. */
export interface RunningRange {
  outcome: Promise<RangeOutcome>;
  abort(): void;
}

export interface RangeWorkers {
  /** `count` idle workers held for one download, or none if fewer are idle (the cores are busy then). */
  reserve(count: number): ReservedWorkers | undefined;
  close(): Promise<void>;
}

export interface ReservedWorkers {
  /** Runs `job` on the next of the held workers; `onBytes` hears what it wrote as it goes. */
  run(job: RangeJob, onBytes: (n: number) => void): RunningRange;
  release(): void;
}

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // Under the test runner this module is TypeScript; the worker always runs the built file.
  const sibling = join(dirname(here), 'range-worker.js');
  return existsSync(sibling) ? sibling : join(packageRoot(), 'dist', 'src', 'transfer', 'range-worker.js');
}

interface Slot {
  worker: Worker | undefined;
  busy: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * Worker threads for the extra streams of large downloads: each runs its own TLS and HTTP
 * parser, so a download uses a second core. Started when first needed, ended after `idleMs`
 * unused so an idle agent holds none.
 */
export function createRangeWorkers(size: number, client: WorkerClientOptions, idleMs = 30_000): RangeWorkers {
  const slots: Slot[] = Array.from({ length: size }, () => ({ worker: undefined, busy: false, idleTimer: undefined }));
  let nextId = 1;
  const pending = new Map<number, { resolve(o: RangeOutcome): void; reject(e: Error): void; onBytes(n: number): void; slot: Slot }>();
  let closed = false;

  const failAll = (slot: Slot, why: string) => {
    for (const [id, p] of pending) {
      if (p.slot !== slot) continue;
      pending.delete(id);
      p.reject(new PetrelError('TRANSFER_CONNECTION', `a download stream's worker thread ${why}`, { transient: true }));
    }
  };

  const start = (slot: Slot): Worker => {
    const worker = new Worker(workerFile(), { workerData: client });
    worker.on('message', (msg: FromWorker) => {
      const p = pending.get(msg.id);
      if (!p) return;
      if (msg.type === 'progress') return p.onBytes(msg.bytes);
      pending.delete(msg.id);
      if (msg.type === 'done') p.resolve({ written: msg.written, digest: msg.digest });
      else p.reject(new RangeFailure(msg.error, msg.written));
    });
    worker.on('error', (e) => failAll(slot, `failed: ${e.message}`));
    worker.on('exit', (code) => {
      if (slot.worker === worker) slot.worker = undefined;
      failAll(slot, `ended (exit code ${code})`);
    });
    return worker;
  };

  const idle = (slot: Slot) => {
    slot.busy = false;
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      const w = slot.worker;
      slot.worker = undefined;
      if (w && !slot.busy) void w.terminate();
    }, idleMs).unref();
  };

  return {
    reserve(count) {
      if (closed) return undefined;
      const free = slots.filter((s) => !s.busy).slice(0, count);
      if (free.length < count) return undefined;
      for (const s of free) {
        s.busy = true;
        clearTimeout(s.idleTimer);
      }
      let turn = 0;
      let released = false;
      return {
        run(job, onBytes) {
          const slot = free[turn++ % free.length] as Slot;
          const worker = (slot.worker ??= start(slot));
          const id = nextId++;
          const outcome = new Promise<RangeOutcome>((resolve, reject) => {
            pending.set(id, { resolve, reject, onBytes, slot });
            worker.postMessage({ type: 'fetch', id, job } satisfies ToWorker);
          });
          return { outcome, abort: () => worker.postMessage({ type: 'abort', id } satisfies ToWorker) };
        },
        release() {
          if (released) return;
          released = true;
          for (const s of free) idle(s);
        },
      };
    },
    async close() {
      closed = true;
      await Promise.all(
        slots.map(async (s) => {
          clearTimeout(s.idleTimer);
          const w = s.worker;
          s.worker = undefined;
          if (w) await w.terminate();
        }),
      );
    },
  };
}
