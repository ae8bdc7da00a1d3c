import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Counts } from '../api/index.js';
import type { JobKind, RunState, TokenSlot } from '../domain.js';
import { PetrelError, type ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import type { JobOptions } from './options.js';
import { jobs, transfers, type JobRow, type TransferRow } from './schema.js';

export interface NewTransfer {
  source: string;
  destination: string;
  host: string;
}

/** A job as submitted, without its transfers (see openJob). */
export interface NewJobHeader {
  kind: JobKind;
  token?: string | undefined;
  /** A copy's token for its source, when it differs from `token`. */
  sourceToken?: string | undefined;
  /** Turns the explicit token into what the token column holds (sealed, plain, or a marker). */
  protectToken?: ((slot: TokenSlot, token: string) => string) | undefined;
  options: JobOptions;
}

export interface NewJob extends NewJobHeader {
  transfers: readonly NewTransfer[];
}

/** Two transfers of one job that would write one destination. */
export interface DuplicateDestination {
  index: number;
  earlier: number;
}

/** A queued transfer with what the engine needs from its job. */
export interface RunnableTransfer extends TransferRow {
  kind: JobKind;
  token: string | null;
  sourceToken: string | null;
  options: string;
}

export interface ByteTotals {
  bytesDone: number;
  bytesTotal: number | null;
}

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

/** A job's transfer counts, from the tallies the database keeps on its row. */
export function countsOf(row: JobRow): Counts {
  return {
    total: row.transferCount,
    queued: row.queuedCount,
    waiting: row.waitingCount,
    running: row.runningCount,
    succeeded: row.succeededCount,
    failed: row.failedCount,
    cancelled: row.cancelledCount,
  };
}

/** Bytes done and, once every transfer's size is known, bytes in all. */
export function byteTotalsOf(row: JobRow): ByteTotals {
  return { bytesDone: row.bytesDone, bytesTotal: row.bytesUnknown ? null : row.bytesTotal };
}

/** Every read and write of jobs and transfers: the database is the only state that survives a restart. */
export function createJobStore(db: Db) {
  const hot = prepareHotStatements(db);

  /**
   * Writes a job whose transfers follow as they arrive (addTransfers). It stays out of the
   * queue and out of sight until completeJob; dropJob takes it back.
   */
  function openJob(job: NewJobHeader, now = Date.now()): string {
    const id = newJobId();
    const row: JobRow = {
      id,
      kind: job.kind,
      state: 'queued',
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      token: job.token ? (job.protectToken ? job.protectToken({ jobId: id, column: 'token' }, job.token) : job.token) : null,
      sourceToken: job.sourceToken ? (job.protectToken ? job.protectToken({ jobId: id, column: 'sourceToken' }, job.sourceToken) : job.sourceToken) : null,
      options: JSON.stringify(job.options),
      transferCount: 0,
      errorCode: null,
      errorMessage: null,
      errorHint: null,
      waitingReason: null,
      waitingHint: null,
      queuedCount: 0,
      waitingCount: 0,
      runningCount: 0,
      succeededCount: 0,
      failedCount: 0,
      cancelledCount: 0,
      bytesDone: 0,
      bytesTotal: 0,
      bytesUnknown: 0,
      receiving: true,
    };
    db.insert(jobs).values(row).run();
    return id;
  }

  /**
   * Appends transfers `first`, `first + 1`, ... to a job being received, in one transaction.
   * A destination the job already writes keeps the whole batch out and is returned.
   */
  function addTransfers(jobId: string, first: number, batch: readonly NewTransfer[]): DuplicateDestination | undefined {
    try {
      hot.insertTransfers(jobId, first, batch);
      return undefined;
    } catch (e) {
      if (!(e instanceof DuplicateFound)) throw e;
      return e.duplicate;
    }
  }

  /**
   * The job's `count` transfers are all in: it joins the queue, every transfer queued with its
   * size unknown. The tallies are written here, not by a trigger: the database's trigger keeps
   * them from here on (migration 0004; one per inserted row made a job of 100,000 4x slower).
   */
  function completeJob(jobId: string, count: number, now = Date.now()): JobRow {
    if (hot.completeJob.run({ id: jobId, count, now }).changes !== 1) throw new Error(`job ${jobId} is not being received`);
    return hot.getJob.get(jobId) as JobRow;
  }

  return {
    /** A job and all its transfers, at once. */
    createJob(job: NewJob, now = Date.now()): JobRow {
      return db.$client.transaction(() => {
        const id = openJob(job, now);
        const duplicate = addTransfers(id, 0, job.transfers);
        if (duplicate) throw new Error(`transfers ${duplicate.earlier} and ${duplicate.index} write one destination`);
        return completeJob(id, job.transfers.length, now);
      })();
    },

    openJob,
    addTransfers,
    completeJob,

    /** Takes back a job that was never completed (a refused or broken submission), with its transfers. */
    dropJob(jobId: string): void {
      hot.dropReceiving.run(jobId);
    },

    /** At start: jobs that a stopped agent was still receiving. Returns how many. */
    dropIncompleteJobs(): number {
      return hot.dropAllReceiving.run().changes;
    },

    getJob(id: string): JobRow | undefined {
      return hot.getJob.get(id) as JobRow | undefined;
    },

    /** Newest first; the cursor is the last row's `createdAt:id`. */
    listJobs(opts: { state?: RunState | undefined; limit: number; cursor?: string | undefined }): { rows: JobRow[]; next?: string } {
      const conds: SQL[] = [eq(jobs.receiving, false)];
      if (opts.state) conds.push(eq(jobs.state, opts.state));
      if (opts.cursor) {
        const [at, id] = decodeCursor(opts.cursor);
        conds.push(or(lt(jobs.createdAt, at), and(eq(jobs.createdAt, at), lt(jobs.id, id))) as SQL);
      }
      const rows = db
        .select()
        .from(jobs)
        .where(and(...conds))
        .orderBy(desc(jobs.createdAt), desc(jobs.id))
        .limit(opts.limit + 1)
        .all();
      const page = rows.slice(0, opts.limit);
      const last = page.at(-1);
      return rows.length > opts.limit && last ? { rows: page, next: encodeCursor(last.createdAt, last.id) } : { rows: page };
    },

    counts(jobId: string): Counts {
      const row = hot.getJob.get(jobId) as JobRow | undefined;
      return row ? countsOf(row) : emptyCounts();
    },

    byteTotals(jobId: string): ByteTotals {
      const row = hot.getJob.get(jobId) as JobRow | undefined;
      return row ? byteTotalsOf(row) : { bytesDone: 0, bytesTotal: null };
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
      return hot.getTransfer.get(id) as TransferRow | undefined;
    },

    /**
     * Queued transfers due by `now`, oldest first, at most `room(host)` for each host (hosts at
     * their limit get none). Each host's queue is read through a partial index of the queued
     * transfers by (host, id), so the cost does not grow with the transfers behind a busy host.
     */
    /**
     * Up to `limit` queued transfers that are due, oldest first within each host and shared
     * between hosts in turn: one host's long queue (or its silence) never takes every slot while
     * another host has work.
     */
    nextRunnable(opts: { now: number; limit: number; room?: (host: string) => number }): RunnableTransfer[] {
      const perHost: RunnableTransfer[][] = [];
      for (const { host } of hot.queuedHosts.all() as { host: string }[]) {
        const n = Math.min(opts.limit, opts.room ? opts.room(host) : opts.limit);
        if (n > 0) {
          const rows = hot.nextRunnableOf.all(host, opts.now, n) as RunnableTransfer[];
          if (rows.length) perHost.push(rows);
        }
      }
      // Round by round, each host's next oldest, the hosts ordered by the age of their oldest.
      perHost.sort((a, b) => (a[0] as RunnableTransfer).id - (b[0] as RunnableTransfer).id);
      const picked: RunnableTransfer[] = [];
      for (let round = 0; picked.length < opts.limit; round++) {
        let any = false;
        for (const rows of perHost) {
          const row = rows[round];
          if (!row) continue;
          any = true;
          picked.push(row);
          if (picked.length === opts.limit) break;
        }
        if (!any) break;
      }
      return picked;
    },

    /** The earliest time after `now` at which a queued transfer in backoff becomes due. */
    nextDueAt(now: number): number | undefined {
      const r = hot.nextDueAt.get(now) as { at: number | null } | undefined;
      return r?.at ?? undefined;
    },

    /** Jobs left unfinished with nothing left to run (a crash between a transfer's end and its job's). */
    unfinishedJobIds(): string[] {
      return (hot.unfinishedJobs.all() as { id: string }[]).map((r) => r.id);
    },

    markRunning(t: TransferRow, runId: string, now = Date.now()): void {
      hot.markRunning(t.id, t.jobId, runId, now);
    },

    saveProgress(updates: readonly { id: number; bytesDone: number; bytesTotal: number | null }[]): void {
      if (updates.length) hot.saveProgress(updates);
    },

    /** A transfer ended for good. */
    finishTransfer(
      id: number,
      end: {
        state: 'succeeded' | 'failed' | 'cancelled';
        bytesDone: number;
        bytesTotal: number | null;
        checksum?: { algorithm: string; value: string; verified: boolean } | undefined;
        error?: ErrorInfo | undefined;
      },
      now = Date.now(),
    ): void {
      hot.finishTransfer.run({
        id,
        state: end.state,
        bytesDone: end.bytesDone,
        bytesTotal: end.bytesTotal,
        checksumValue: end.checksum ? `${end.checksum.algorithm}:${end.checksum.value}` : null,
        checksumVerified: end.checksum ? Number(end.checksum.verified) : null,
        errorCode: end.error?.code ?? null,
        errorMessage: end.error?.message ?? null,
        errorHint: end.error?.hint ?? null,
        finishedAt: now,
      });
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
     * Parks a transfer until the user acts (a credential, an open wallet); the attempt does not
     * count. The job shows the reason, and is `waiting` while none of its transfers runs.
     */
    waitTransfer(id: number, jobId: string, opts: { reason: string; hint: string | undefined; bytesDone: number; bytesTotal: number | null }): void {
      db.transaction((tx) => {
        tx.update(transfers)
          .set({
            state: 'waiting',
            runId: null,
            bytesDone: opts.bytesDone,
            bytesTotal: opts.bytesTotal,
            waitingReason: opts.reason,
            waitingHint: opts.hint ?? null,
            attempts: sql`max(${transfers.attempts} - 1, 0)`,
          })
          .where(eq(transfers.id, id))
          .run();
        const running = tx.select({ n: sql<number>`count(*)` }).from(transfers).where(and(eq(transfers.jobId, jobId), eq(transfers.state, 'running'))).get()?.n ?? 0;
        tx.update(jobs)
          .set({ waitingReason: opts.reason, waitingHint: opts.hint ?? null, ...(running ? {} : { state: 'waiting' as const }) })
          .where(and(eq(jobs.id, jobId), inArray(jobs.state, ['queued', 'running', 'waiting'])))
          .run();
      });
    },

    /** Rewrites the token columns of jobs where `reseal` returns a new value. */
    resealTokens(reseal: (slot: TokenSlot, value: string) => string | undefined): number {
      const n = db.transaction((tx) => {
        let n = 0;
        // Finished jobs too: a failed one keeps its token for `petrel job retry`.
        const rows = tx.select({ id: jobs.id, token: jobs.token, sourceToken: jobs.sourceToken }).from(jobs).where(or(sql`${jobs.token} is not null`, sql`${jobs.sourceToken} is not null`)).all();
        for (const r of rows) {
          const token = r.token === null ? undefined : reseal({ jobId: r.id, column: 'token' }, r.token);
          const sourceToken = r.sourceToken === null ? undefined : reseal({ jobId: r.id, column: 'sourceToken' }, r.sourceToken);
          if (token !== undefined || sourceToken !== undefined) {
            tx.update(jobs).set({ ...(token !== undefined ? { token } : {}), ...(sourceToken !== undefined ? { sourceToken } : {}) }).where(eq(jobs.id, r.id)).run();
            n++;
          }
        }
        return n;
      });
      // Move the rewritten pages into the database file and empty the WAL, so the old
      // plaintext survives in neither (secure_delete zeroes what the rewrite freed).
      if (n) db.$client.pragma('wal_checkpoint(TRUNCATE)');
      return n;
    },

    /** A running job with nothing left to run but transfers that wait shows `waiting`. */
    settleJobState(jobId: string): void {
      hot.settleJobState.run({ jobId });
    },

    /**
     * Everything waiting for the user goes back to the queue (a credential appeared, the wallet
     * opened). Returns how many. What waits for its host stays: the host's health decides.
     */
    resumeWaiting(): number {
      return db.transaction((tx) => {
        const n = tx
          .update(transfers)
          .set({ state: 'queued', waitingReason: null, waitingHint: null, notBefore: 0 })
          .where(and(eq(transfers.state, 'waiting'), eq(transfers.waitingForHost, false)))
          .run().changes;
        if (n) hot.requeueWaitingJobs.run();
        return n;
      });
    },

    /**
     * The host stopped answering: its queued transfers wait, with the reason, until it answers
     * again (not using up their attempts). Returns the jobs that changed.
     */
    parkHost(host: string, reason: string, hint: string): string[] {
      return hot.parkHost(host, reason, hint);
    },

    /** The oldest transfer waiting for the host goes back to the queue: the host's probe. */
    unparkOne(host: string): boolean {
      return hot.unparkOne(host);
    },

    /** The host answers again (or, with no host, the agent starts): what waited for it is queued. Returns the jobs that changed. */
    unparkHost(host?: string): string[] {
      return hot.unparkHost(host ?? null);
    },

    /** The host has not answered for too long: what waits for it fails with `error`. Returns the jobs that changed. */
    failHost(host: string, error: ErrorInfo, now = Date.now()): string[] {
      return hot.failHost(host, error, now);
    },

    /**
     * Writes a job's end fields once no transfer of it is left to run (rclone's finish()).
     * Returns the finished row, or undefined while transfers remain.
     */
    finishJobIfDone(jobId: string, now = Date.now()): JobRow | undefined {
      // The common case, transfers still left, is answered by one prepared statement.
      if ((hot.hasUnfinished.get(jobId) as { n: number }).n) return undefined;
      return db.transaction((tx) => {
        const job = tx.select().from(jobs).where(eq(jobs.id, jobId)).get();
        if (!job || job.finishedAt !== null) return undefined;
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
        // A succeeded job has nothing left to retry: its explicit token is no longer kept.
        const set: Partial<JobRow> = { state, finishedAt: now, waitingReason: null, waitingHint: null, ...(state === 'succeeded' ? { token: null, sourceToken: null } : {}) };
        if (state === 'failed' && failed) {
          set.errorCode = failed.errorCode;
          set.errorMessage =
            job.transferCount === 1
              ? failed.errorMessage
              : `${nFailed} of ${job.transferCount} transfers failed; the first: ${failed.source}: ${failed.errorMessage ?? failed.errorCode}`;
          set.errorHint = failed.errorHint;
        }
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

    /**
     * Re-queues the failed and cancelled transfers of a finished job, but for those refused as
     * a bad request (set apart by migration 0007), which no retry can mend. Returns how many.
     */
    retryJob(jobId: string): number {
      return db.transaction((tx) => {
        const res = tx
          .update(transfers)
          .set({ state: 'queued', attempts: 0, notBefore: 0, errorCode: null, errorMessage: null, errorHint: null, finishedAt: null, bytesDone: 0 })
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, ['failed', 'cancelled']), sql`coalesce(${transfers.errorCode}, '') != 'API_BAD_REQUEST'`))
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

    /**
     * After a crash or restart: what a previous run left running goes back to the queue, except
     * in jobs cancelled meanwhile, where it ends as cancelled. Returns how many were re-queued.
     */
    requeueOrphans(runId: string): number {
      return db.transaction((tx) => {
        const orphan = and(eq(transfers.state, 'running'), or(sql`${transfers.runId} is null`, sql`${transfers.runId} != ${runId}`));
        const cancelledJobs = tx.select({ id: jobs.id }).from(jobs).where(eq(jobs.state, 'cancelled'));
        tx.update(transfers)
          .set({ state: 'cancelled', runId: null, finishedAt: Date.now() })
          .where(and(orphan, inArray(transfers.jobId, cancelledJobs)))
          .run();
        return tx.update(transfers).set({ state: 'queued', runId: null, notBefore: 0 }).where(orphan).run().changes;
      });
    },

    queueCounts(): { running: number; queued: number; waiting: number } {
      const r = hot.queueCounts.get() as { running: number | null; queued: number | null; waiting: number | null };
      return { running: r.running ?? 0, queued: r.queued ?? 0, waiting: r.waiting ?? 0 };
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;

/** Thrown inside the insert transaction, so that it rolls back. */
class DuplicateFound extends Error {
  constructor(readonly duplicate: DuplicateDestination) {
    super('duplicate destination');
  }
}

function encodeCursor(at: number, id: string): string {
  return Buffer.from(`${at}:${id}`).toString('base64url');
}

/** A cursor this store made, or a 400: a garbage one must not answer an empty page as if the list had ended. */
function decodeCursor(cursor: string): [number, string] {
  const m = /^(\d{1,16}):([a-z0-9]{1,32})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m || encodeCursor(Number(m[1]), m[2] as string) !== cursor) {
    throw new PetrelError('API_BAD_REQUEST', 'cursor is not one this agent gave out', { hint: 'pass the `next` value of a previous page, or leave cursor out for the first page' });
  }
  return [Number(m[1]), m[2] as string];
}

const TRANSFER_COLUMNS = `t.id, t.job_id AS jobId, t.idx, t.source, t.destination, t.host, t.state, t.bytes_done AS bytesDone,
  t.bytes_total AS bytesTotal, t.attempts, t.not_before AS notBefore, t.checksum_value AS checksumValue,
  t.checksum_verified AS checksumVerified, t.error_code AS errorCode,
  t.error_message AS errorMessage, t.error_hint AS errorHint, t.waiting_reason AS waitingReason, t.waiting_hint AS waitingHint,
  t.waiting_for_host AS waitingForHost, t.run_id AS runId, t.started_at AS startedAt, t.finished_at AS finishedAt`;

const JOB_COLUMNS = `id, kind, state, created_at AS createdAt, started_at AS startedAt, finished_at AS finishedAt, token, source_token AS sourceToken, options,
  transfer_count AS transferCount, error_code AS errorCode, error_message AS errorMessage, error_hint AS errorHint,
  waiting_reason AS waitingReason, waiting_hint AS waitingHint, queued_count AS queuedCount, waiting_count AS waitingCount,
  running_count AS runningCount, succeeded_count AS succeededCount, failed_count AS failedCount, cancelled_count AS cancelledCount,
  bytes_done AS bytesDone, bytes_total AS bytesTotal, bytes_unknown AS bytesUnknown, receiving`;

/**
 * The scheduler's per-transfer queries, prepared once: building and preparing them through the
 * query builder on every call cost more than the transfer of a small file.
 */
function prepareHotStatements(db: Db) {
  const client = db.$client;
  const markTransfer = client.prepare('UPDATE transfers SET state = \'running\', run_id = ?, attempts = attempts + 1, started_at = coalesce(started_at, ?) WHERE id = ?');
  const markJob = client.prepare(
    "UPDATE jobs SET state = 'running', started_at = coalesce(started_at, ?), waiting_reason = NULL, waiting_hint = NULL WHERE id = ? AND state IN ('queued', 'waiting')",
  );
  const progress = client.prepare('UPDATE transfers SET bytes_done = ?, bytes_total = ? WHERE id = ?');
  const insertTransfer = client.prepare("INSERT INTO transfers (job_id, idx, source, destination, host, state) VALUES (?, ?, ?, ?, ?, 'queued')");
  const earlierWriter = client.prepare('SELECT idx FROM transfers WHERE job_id = ? AND destination = ?').pluck();
  const distinctJobs = (rows: unknown[]) => [...new Set((rows as { jobId: string }[]).map((r) => r.jobId))];
  const parkTransfers = client.prepare(
    `UPDATE transfers INDEXED BY transfers_queued_by_host SET state = 'waiting', waiting_reason = @reason, waiting_hint = @hint, waiting_for_host = 1, not_before = 0
     WHERE host = @host AND state = 'queued' RETURNING job_id AS jobId`,
  );
  const markJobWaiting = client.prepare(
    `UPDATE jobs SET waiting_reason = @reason, waiting_hint = @hint,
       state = CASE WHEN EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state IN ('running', 'queued')) THEN state ELSE 'waiting' END
     WHERE id = @jobId AND finished_at IS NULL AND state != 'cancelled'`,
  );
  const unparkOne = client.prepare(
    `UPDATE transfers SET state = 'queued', waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0, not_before = 0
     WHERE id = (SELECT id FROM transfers INDEXED BY transfers_waiting_for_host WHERE host = ? AND waiting_for_host = 1 AND state = 'waiting' ORDER BY id LIMIT 1)
     RETURNING job_id AS jobId`,
  );
  const unparkHost = client.prepare(
    `UPDATE transfers SET state = 'queued', waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0, not_before = 0
     WHERE waiting_for_host = 1 AND state = 'waiting' AND (@host IS NULL OR host = @host) RETURNING job_id AS jobId`,
  );
  // A waiting job with work queued again is queued, without a reason unless some transfer still waits.
  const requeueJob = client.prepare(
    `UPDATE jobs SET state = CASE WHEN state = 'waiting' THEN 'queued' ELSE state END,
       waiting_reason = CASE WHEN EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state = 'waiting') THEN waiting_reason END,
       waiting_hint = CASE WHEN EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state = 'waiting') THEN waiting_hint END
     WHERE id = @jobId AND finished_at IS NULL`,
  );
  const failParked = client.prepare(
    `UPDATE transfers SET state = 'failed', error_code = @code, error_message = @message, error_hint = @hint, finished_at = @now,
       waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0
     WHERE host = @host AND waiting_for_host = 1 AND state = 'waiting' RETURNING job_id AS jobId`,
  );
  return {
    requeueWaitingJobs: client.prepare(
      `UPDATE jobs SET state = CASE WHEN state = 'waiting' THEN 'queued' ELSE state END, waiting_reason = NULL, waiting_hint = NULL
       WHERE finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM transfers WHERE job_id = jobs.id AND state = 'waiting')`,
    ),
    parkHost: client.transaction((host: string, reason: string, hint: string): string[] => {
      const ids = distinctJobs(parkTransfers.all({ host, reason, hint }));
      for (const jobId of ids) markJobWaiting.run({ jobId, reason, hint });
      return ids;
    }),
    unparkOne: client.transaction((host: string): boolean => {
      const row = unparkOne.get(host) as { jobId: string } | undefined;
      if (row) requeueJob.run({ jobId: row.jobId });
      return row !== undefined;
    }),
    unparkHost: client.transaction((host: string | null): string[] => {
      const ids = distinctJobs(unparkHost.all({ host }));
      for (const jobId of ids) requeueJob.run({ jobId });
      return ids;
    }),
    failHost: client.transaction((host: string, error: ErrorInfo, now: number): string[] =>
      distinctJobs(failParked.all({ host, code: error.code, message: error.message, hint: error.hint ?? null, now })),
    ),
    // One prepared statement per row: building multi-row INSERTs through the query builder
    // cost 3 s for 100,000 transfers, this 0.4 s.
    insertTransfers: client.transaction((jobId: string, first: number, batch: readonly NewTransfer[]) => {
      batch.forEach((t, i) => {
        try {
          insertTransfer.run(jobId, first + i, t.source, t.destination, t.host);
        } catch (e) {
          const earlier = (e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' ? (earlierWriter.get(jobId, t.destination) as number | undefined) : undefined;
          if (earlier === undefined) throw e;
          throw new DuplicateFound({ index: first + i, earlier });
        }
      });
    }),
    completeJob: client.prepare(
      'UPDATE jobs SET receiving = 0, transfer_count = @count, queued_count = @count, bytes_unknown = @count, created_at = @now WHERE id = @id AND receiving = 1',
    ),
    dropReceiving: client.prepare('DELETE FROM jobs WHERE id = ? AND receiving = 1'),
    dropAllReceiving: client.prepare('DELETE FROM jobs WHERE receiving = 1'),
    // A job being received is not there yet, for the API as for the queue.
    getJob: client.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ? AND receiving = 0`),
    getTransfer: client.prepare(`SELECT ${TRANSFER_COLUMNS} FROM transfers t WHERE t.id = ?`),
    settleJobState: client.prepare(
      `UPDATE jobs SET state = 'waiting'
       WHERE id = @jobId AND state = 'running' AND finished_at IS NULL
         AND EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state = 'waiting')
         AND NOT EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state IN ('running', 'queued'))`,
    ),
    queueCounts: client.prepare('SELECT sum(running_count) AS running, sum(queued_count) AS queued, sum(waiting_count) AS waiting FROM jobs WHERE finished_at IS NULL'),
    hasUnfinished: client.prepare("SELECT EXISTS (SELECT 1 FROM transfers WHERE job_id = ? AND state IN ('queued', 'waiting', 'running')) AS n"),
    unfinishedJobs: client.prepare('SELECT id FROM jobs WHERE finished_at IS NULL AND receiving = 0'),
    // The distinct hosts with queued transfers, one index seek each (a "loose index scan").
    queuedHosts: client.prepare(
      `WITH RECURSIVE h(host) AS (
         SELECT (SELECT host FROM transfers WHERE state = 'queued' ORDER BY host LIMIT 1)
         UNION ALL
         SELECT (SELECT host FROM transfers WHERE state = 'queued' AND host > h.host ORDER BY host LIMIT 1) FROM h WHERE h.host IS NOT NULL
       ) SELECT host FROM h WHERE host IS NOT NULL`,
    ),
    nextRunnableOf: client.prepare(
      `SELECT ${TRANSFER_COLUMNS}, j.kind AS kind, j.token AS token, j.source_token AS sourceToken, j.options AS options
       FROM transfers t INDEXED BY transfers_queued_by_host JOIN jobs j ON j.id = t.job_id
       WHERE t.state = 'queued' AND t.host = ? AND t.not_before <= ? AND j.state != 'cancelled' AND j.receiving = 0
       ORDER BY t.id LIMIT ?`,
    ),
    nextDueAt: client.prepare("SELECT min(not_before) AS at FROM transfers WHERE state = 'queued' AND not_before > ?"),
    finishTransfer: client.prepare(
      `UPDATE transfers SET state = @state, bytes_done = @bytesDone, bytes_total = @bytesTotal, checksum_value = @checksumValue, checksum_verified = @checksumVerified,
       error_code = @errorCode, error_message = @errorMessage, error_hint = @errorHint, finished_at = @finishedAt, run_id = NULL WHERE id = @id`,
    ),
    markRunning: client.transaction((transferId: number, jobId: string, runId: string, now: number) => {
      markTransfer.run(runId, now, transferId);
      markJob.run(now, jobId);
    }),
    saveProgress: client.transaction((updates: readonly { id: number; bytesDone: number; bytesTotal: number | null }[]) => {
      for (const u of updates) progress.run(u.bytesDone, u.bytesTotal, u.id);
    }),
  };
}
