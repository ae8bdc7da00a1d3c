import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, lt, lte, notInArray, or, sql } from 'drizzle-orm';
import type { ChecksumChoice, Counts, JobKind, RunState } from '../api/schemas.js';
import type { ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import { jobs, transfers, type JobRow, type TransferRow } from './schema.js';

export interface JobOptions {
  checksum: ChecksumChoice;
}

export interface NewTransfer {
  source: string;
  destination: string;
  host: string;
}

export interface NewJob {
  kind: JobKind;
  transfers: readonly NewTransfer[];
  token?: string | undefined;
  options: JobOptions;
}

/** A queued transfer with what the engine needs from its job. */
export interface RunnableTransfer extends TransferRow {
  kind: JobKind;
  token: string | null;
  options: string;
}

export interface ByteTotals {
  bytesDone: number;
  bytesTotal: number | null;
}

const INSERT_CHUNK = 500; // rows per INSERT statement, under SQLite's variable limit

function newJobId(): string {
  // 10 base32 characters: short enough to type, 50 bits of randomness.
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(10);
  let id = '';
  for (const b of bytes) id += alphabet[b % 32];
  return id;
}

function emptyCounts(): Counts {
  return { total: 0, queued: 0, waiting: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
}

export function parseJobOptions(json: string): JobOptions {
  const raw = JSON.parse(json) as Partial<JobOptions>;
  return { checksum: raw.checksum ?? 'adler32' };
}

/** Every read and write of jobs and transfers: the database is the only state that survives a restart. */
export function createJobStore(db: Db) {
  return {
    createJob(job: NewJob, now = Date.now()): JobRow {
      return db.transaction((tx) => {
        const id = newJobId();
        const row: JobRow = {
          id,
          kind: job.kind,
          state: 'queued',
          createdAt: now,
          startedAt: null,
          finishedAt: null,
          token: job.token ?? null,
          options: JSON.stringify(job.options),
          transferCount: job.transfers.length,
          errorCode: null,
          errorMessage: null,
          errorHint: null,
          waitingReason: null,
          waitingHint: null,
        };
        tx.insert(jobs).values(row).run();
        for (let i = 0; i < job.transfers.length; i += INSERT_CHUNK) {
          const slice = job.transfers.slice(i, i + INSERT_CHUNK);
          tx.insert(transfers)
            .values(slice.map((t, k) => ({ jobId: id, idx: i + k, source: t.source, destination: t.destination, host: t.host, state: 'queued' as const })))
            .run();
        }
        return row;
      });
    },

    getJob(id: string): JobRow | undefined {
      return db.select().from(jobs).where(eq(jobs.id, id)).get();
    },

    /** Newest first; the cursor is the last row's `createdAt:id`. */
    listJobs(opts: { state?: RunState | undefined; limit: number; cursor?: string | undefined }): { rows: JobRow[]; next?: string } {
      const conds = [];
      if (opts.state) conds.push(eq(jobs.state, opts.state));
      if (opts.cursor) {
        const [at, id] = decodeCursor(opts.cursor);
        conds.push(or(lt(jobs.createdAt, at), and(eq(jobs.createdAt, at), lt(jobs.id, id))));
      }
      const rows = db
        .select()
        .from(jobs)
        .where(conds.length ? and(...conds) : undefined)
        .orderBy(desc(jobs.createdAt), desc(jobs.id))
        .limit(opts.limit + 1)
        .all();
      const page = rows.slice(0, opts.limit);
      const last = page.at(-1);
      return rows.length > opts.limit && last ? { rows: page, next: encodeCursor(last.createdAt, last.id) } : { rows: page };
    },

    counts(jobId: string): Counts {
      const rows = db
        .select({ state: transfers.state, n: sql<number>`count(*)` })
        .from(transfers)
        .where(eq(transfers.jobId, jobId))
        .groupBy(transfers.state)
        .all();
      const counts = emptyCounts();
      for (const r of rows) {
        counts[r.state] = r.n;
        counts.total += r.n;
      }
      return counts;
    },

    byteTotals(jobId: string): ByteTotals {
      const r = db
        .select({
          done: sql<number>`coalesce(sum(${transfers.bytesDone}), 0)`,
          total: sql<number>`coalesce(sum(${transfers.bytesTotal}), 0)`,
          unknown: sql<number>`sum(${transfers.bytesTotal} is null)`,
        })
        .from(transfers)
        .where(eq(transfers.jobId, jobId))
        .get();
      return { bytesDone: r?.done ?? 0, bytesTotal: r && r.unknown === 0 ? r.total : null };
    },

    listTransfers(jobId: string, opts: { state?: RunState | undefined; limit: number; afterIndex?: number | undefined }): { rows: TransferRow[]; nextIndex?: number } {
      const conds = [eq(transfers.jobId, jobId)];
      if (opts.state) conds.push(eq(transfers.state, opts.state));
      if (opts.afterIndex !== undefined) conds.push(gt(transfers.idx, opts.afterIndex));
      const rows = db
        .select()
        .from(transfers)
        .where(and(...conds))
        .orderBy(asc(transfers.idx))
        .limit(opts.limit + 1)
        .all();
      const page = rows.slice(0, opts.limit);
      const last = page.at(-1);
      return rows.length > opts.limit && last ? { rows: page, nextIndex: last.idx } : { rows: page };
    },

    getTransfer(id: number): TransferRow | undefined {
      return db.select().from(transfers).where(eq(transfers.id, id)).get();
    },

    /** Queued transfers due by `now`, oldest first, skipping hosts that are at their limit. */
    nextRunnable(opts: { now: number; limit: number; busyHosts: readonly string[] }): RunnableTransfer[] {
      const conds = [eq(transfers.state, 'queued'), lte(transfers.notBefore, opts.now)];
      if (opts.busyHosts.length) conds.push(notInArray(transfers.host, [...opts.busyHosts]));
      return db
        .select({ t: transfers, kind: jobs.kind, token: jobs.token, options: jobs.options })
        .from(transfers)
        .innerJoin(jobs, eq(jobs.id, transfers.jobId))
        .where(and(...conds))
        .orderBy(asc(transfers.id))
        .limit(opts.limit)
        .all()
        .map((r) => ({ ...r.t, kind: r.kind, token: r.token, options: r.options }));
    },

    /** The earliest time a queued transfer becomes due, if any is queued. */
    nextDueAt(): number | undefined {
      const r = db
        .select({ at: sql<number | null>`min(${transfers.notBefore})` })
        .from(transfers)
        .where(eq(transfers.state, 'queued'))
        .get();
      return r?.at ?? undefined;
    },

    markRunning(t: TransferRow, runId: string, now = Date.now()): void {
      db.transaction((tx) => {
        tx.update(transfers)
          .set({ state: 'running', runId, attempts: t.attempts + 1, startedAt: t.startedAt ?? now })
          .where(eq(transfers.id, t.id))
          .run();
        tx.update(jobs)
          .set({ state: 'running', startedAt: sql`coalesce(${jobs.startedAt}, ${now})` })
          .where(and(eq(jobs.id, t.jobId), inArray(jobs.state, ['queued', 'waiting'])))
          .run();
      });
    },

    saveProgress(updates: readonly { id: number; bytesDone: number; bytesTotal: number | null }[]): void {
      if (!updates.length) return;
      db.transaction((tx) => {
        for (const u of updates) {
          tx.update(transfers).set({ bytesDone: u.bytesDone, bytesTotal: u.bytesTotal }).where(eq(transfers.id, u.id)).run();
        }
      });
    },

    /** A transfer ended for good. */
    finishTransfer(
      id: number,
      end: { state: 'succeeded' | 'failed' | 'cancelled'; bytesDone: number; bytesTotal: number | null; checksumValue?: string | undefined; error?: ErrorInfo | undefined },
      now = Date.now(),
    ): void {
      db.update(transfers)
        .set({
          state: end.state,
          bytesDone: end.bytesDone,
          bytesTotal: end.bytesTotal,
          checksumValue: end.checksumValue ?? null,
          errorCode: end.error?.code ?? null,
          errorMessage: end.error?.message ?? null,
          errorHint: end.error?.hint ?? null,
          finishedAt: now,
          runId: null,
        })
        .where(eq(transfers.id, id))
        .run();
    },

    /** Back to the queue: after a transient failure (with the error and a backoff) or an interruption. */
    requeueTransfer(id: number, opts: { notBefore: number; bytesDone: number; bytesTotal: number | null; error?: ErrorInfo | undefined; uncountAttempt?: boolean }): void {
      db.update(transfers)
        .set({
          state: 'queued',
          notBefore: opts.notBefore,
          bytesDone: opts.bytesDone,
          bytesTotal: opts.bytesTotal,
          runId: null,
          ...(opts.error ? { errorCode: opts.error.code, errorMessage: opts.error.message, errorHint: opts.error.hint ?? null } : {}),
          ...(opts.uncountAttempt ? { attempts: sql`max(${transfers.attempts} - 1, 0)` } : {}),
        })
        .where(eq(transfers.id, id))
        .run();
    },

    /**
     * Writes a job's end fields once no transfer of it is left to run (rclone's finish()).
     * Returns the finished row, or undefined while transfers remain.
     */
    finishJobIfDone(jobId: string, now = Date.now()): JobRow | undefined {
      return db.transaction((tx) => {
        const job = tx.select().from(jobs).where(eq(jobs.id, jobId)).get();
        if (!job || job.finishedAt !== null) return undefined;
        const left = tx
          .select({ n: sql<number>`count(*)` })
          .from(transfers)
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, ['queued', 'waiting', 'running'])))
          .get();
        if ((left?.n ?? 0) > 0) return undefined;
        const failed = tx
          .select()
          .from(transfers)
          .where(and(eq(transfers.jobId, jobId), eq(transfers.state, 'failed')))
          .orderBy(asc(transfers.idx))
          .limit(1)
          .get();
        const nFailed = failed
          ? (tx
              .select({ n: sql<number>`count(*)` })
              .from(transfers)
              .where(and(eq(transfers.jobId, jobId), eq(transfers.state, 'failed')))
              .get()?.n ?? 0)
          : 0;
        const state = job.state === 'cancelled' ? 'cancelled' : failed ? 'failed' : 'succeeded';
        const set: Partial<JobRow> = { state, finishedAt: now, waitingReason: null, waitingHint: null };
        if (state === 'failed' && failed) {
          set.errorCode = failed.errorCode;
          set.errorMessage =
            job.transferCount === 1
              ? failed.errorMessage
              : `${nFailed} of ${job.transferCount} transfers failed; the first: ${failed.source}: ${failed.errorMessage ?? failed.errorCode}`;
          set.errorHint = failed.errorHint;
        }
        // The explicit token is not needed once nothing of the job can run again without a new submission.
        tx.update(jobs).set(set).where(eq(jobs.id, jobId)).run();
        return { ...job, ...set } as JobRow;
      });
    },

    /** Marks the job cancelled and its queued transfers cancelled; running ones are the scheduler's to stop. */
    cancelJob(jobId: string, now = Date.now()): { job: JobRow; running: number[]; interrupted: TransferRow[] } | undefined {
      return db.transaction((tx) => {
        const job = tx.select().from(jobs).where(eq(jobs.id, jobId)).get();
        if (!job) return undefined;
        if (job.finishedAt !== null) return { job, running: [], interrupted: [] };
        // Queued transfers that ran before may have left partial files behind.
        const interrupted = tx
          .select()
          .from(transfers)
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, ['queued', 'waiting']), gt(transfers.attempts, 0)))
          .all();
        tx.update(jobs).set({ state: 'cancelled', waitingReason: null, waitingHint: null }).where(eq(jobs.id, jobId)).run();
        tx.update(transfers)
          .set({ state: 'cancelled', finishedAt: now })
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, ['queued', 'waiting'])))
          .run();
        const running = tx
          .select({ id: transfers.id })
          .from(transfers)
          .where(and(eq(transfers.jobId, jobId), eq(transfers.state, 'running')))
          .all()
          .map((r) => r.id);
        return { job: { ...job, state: 'cancelled' as const }, running, interrupted };
      });
    },

    /** Re-queues the failed and cancelled transfers of a finished job. Returns how many. */
    retryJob(jobId: string): number {
      return db.transaction((tx) => {
        const res = tx
          .update(transfers)
          .set({ state: 'queued', attempts: 0, notBefore: 0, errorCode: null, errorMessage: null, errorHint: null, finishedAt: null, bytesDone: 0 })
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, ['failed', 'cancelled'])))
          .run();
        if (res.changes > 0) {
          tx.update(jobs)
            .set({ state: 'queued', finishedAt: null, errorCode: null, errorMessage: null, errorHint: null })
            .where(eq(jobs.id, jobId))
            .run();
        }
        return res.changes;
      });
    },

    /** After a crash or restart: what a previous run left running goes back to the queue. */
    requeueOrphans(runId: string): number {
      return db
        .update(transfers)
        .set({ state: 'queued', runId: null, notBefore: 0 })
        .where(and(eq(transfers.state, 'running'), or(sql`${transfers.runId} is null`, sql`${transfers.runId} != ${runId}`)))
        .run().changes;
    },

    queueCounts(): { running: number; queued: number; waiting: number } {
      const rows = db
        .select({ state: transfers.state, n: sql<number>`count(*)` })
        .from(transfers)
        .where(inArray(transfers.state, ['running', 'queued', 'waiting']))
        .groupBy(transfers.state)
        .all();
      const out = { running: 0, queued: 0, waiting: 0 };
      for (const r of rows) if (r.state in out) out[r.state as keyof typeof out] = r.n;
      return out;
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;

function encodeCursor(at: number, id: string): string {
  return Buffer.from(`${at}:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split(':');
  return [Number(at) || 0, id ?? ''];
}
