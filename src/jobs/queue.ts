import { and, asc, eq, gt, inArray, isNotNull, isNull, or, sql } from 'drizzle-orm';
import type { ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import { JOB_MOVES, jobEnd, TRANSFER_MOVES, transferEnd, type TransferOutcome } from './model.js';
import type { RunnableTransfer } from './records.js';
import { jobs, transfers, type JobRow, type TransferRow } from './schema.js';
import type { Statements } from './statements.js';

const T = TRANSFER_MOVES;
const J = JOB_MOVES;

/** What the scheduler does with the queue: pick, start, record progress, end, retry, park, recover. */
export function createQueue(db: Db, st: Statements) {
  return {
    /**
     * Up to `limit` queued transfers that are due, oldest first within each host and shared
     * between hosts in turn: one host's long queue (or its silence) never takes every slot while
     * another host has work. Each host's queue is read through a partial index of the queued
     * transfers by (host, id), so the cost does not grow with the transfers behind a busy host;
     * hosts at their limit (`room(host)` 0) get none.
     */
    nextRunnable(opts: { now: number; limit: number; room?: (host: string) => number }): RunnableTransfer[] {
      const perHost: RunnableTransfer[][] = [];
      for (const { host } of st.queuedHosts.all() as { host: string }[]) {
        const n = Math.min(opts.limit, opts.room ? opts.room(host) : opts.limit);
        if (n > 0) {
          const rows = st.nextRunnableOf(host, opts.now, n) as RunnableTransfer[];
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
      const r = st.nextDueAt.get(now) as { at: number | null } | undefined;
      return r?.at ?? undefined;
    },

    markRunning(t: TransferRow, runId: string, now = Date.now()): void {
      st.markRunning(t.id, t.jobId, runId, now);
    },

    saveProgress(updates: readonly { id: number; bytesDone: number; bytesTotal: number | null }[]): void {
      if (updates.length) st.saveProgress(updates);
    },

    /**
     * Runs `fn` in one transaction (moves inside it nest as savepoints): what the scheduler writes
     * when a transfer ends (its end, the job's state, the next transfer started) is one commit,
     * not three (~15 against ~50 µs a file).
     */
    atomically<T>(fn: () => T): T {
      return db.transaction(() => fn());
    },

    /** A transfer ended for good: its end fields, from the model, in one statement. */
    finishTransfer(id: number, outcome: TransferOutcome, now = Date.now()): void {
      st.finishTransfer.run({ id, ...transferEnd(outcome, now) });
    },

    /** Back to the queue: after a transient failure (with the error and a backoff) or an interruption. */
    requeueTransfer(id: number, opts: { notBefore: number; bytesDone: number; bytesTotal: number | null; error?: ErrorInfo | undefined; uncountAttempt?: boolean }): void {
      db.update(transfers)
        .set({
          state: T.requeue.to,
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
            state: T.wait.to,
            runId: null,
            bytesDone: opts.bytesDone,
            bytesTotal: opts.bytesTotal,
            waitingReason: opts.reason,
            waitingHint: opts.hint ?? null,
            attempts: sql`max(${transfers.attempts} - 1, 0)`,
          })
          .where(eq(transfers.id, id))
          .run();
        const running = tx.select({ n: sql<number>`count(*)` }).from(transfers).where(and(eq(transfers.jobId, jobId), eq(transfers.state, T.start.to))).get()?.n ?? 0;
        tx.update(jobs)
          .set({ waitingReason: opts.reason, waitingHint: opts.hint ?? null, ...(running ? {} : { state: J.wait.to }) })
          .where(and(eq(jobs.id, jobId), inArray(jobs.state, [...J.wait.from])))
          .run();
      });
    },

    /** A running job with nothing left to run but transfers that wait shows `waiting`. */
    settleJobState(jobId: string): void {
      st.settleJobState.run({ jobId });
    },

    /**
     * Everything waiting for the user goes back to the queue (a credential appeared, the wallet
     * opened). Returns how many. What waits for its host stays: the host's health decides.
     */
    resumeWaiting(): number {
      return db.transaction((tx) => {
        const n = tx
          .update(transfers)
          .set({ state: T.resume.to, waitingReason: null, waitingHint: null, notBefore: 0 })
          // What waits for its host or for tape is not the user's to resume.
          .where(and(inArray(transfers.state, [...T.resume.from]), eq(transfers.waitingForHost, false), or(isNull(transfers.stageRequest), isNotNull(transfers.stagedAt))))
          .run().changes;
        if (n) st.requeueWaitingJobs.run();
        return n;
      });
    },

    /**
     * The host stopped answering: its queued transfers wait, with the reason, until it answers
     * again (not using up their attempts). Returns the jobs that changed.
     */
    parkHost(host: string, reason: string, hint: string): string[] {
      return st.parkHost(host, reason, hint);
    },

    /** The oldest transfer waiting for the host goes back to the queue: the host's probe. */
    unparkOne(host: string): boolean {
      return st.unparkOne(host);
    },

    /** The host answers again (or, with no host, the agent starts): what waited for it is queued. Returns the jobs that changed. */
    unparkHost(host?: string): string[] {
      return st.unparkHost(host ?? null);
    },

    /** The host has not answered for too long: what waits for it fails with `error`. Returns the jobs that changed. */
    failHost(host: string, error: ErrorInfo, now = Date.now()): string[] {
      return st.failHost(host, error, now);
    },

    /**
     * Writes a job's end fields (model.ts jobEnd) once no transfer of it is left to run.
     * Returns the finished row, or undefined while transfers remain.
     */
    finishJobIfDone(jobId: string, now = Date.now()): JobRow | undefined {
      // The common case, transfers still left, is answered by one prepared statement.
      if ((st.hasUnfinished.get(jobId) as { n: number }).n) return undefined;
      return db.transaction((tx) => {
        const job = tx.select().from(jobs).where(eq(jobs.id, jobId)).get();
        // A -r job still listing has more transfers to come.
        if (!job || job.finishedAt !== null || job.state === J.listed.from[0]) return undefined;
        const failedOf = and(eq(transfers.jobId, jobId), eq(transfers.state, T.fail.to));
        const first = tx.select().from(transfers).where(failedOf).orderBy(asc(transfers.idx)).limit(1).get();
        const count = first ? (tx.select({ n: sql<number>`count(*)` }).from(transfers).where(failedOf).get()?.n ?? 0) : 0;
        const set = jobEnd(job, { first, count }, now);
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
        const cancellable = and(eq(transfers.jobId, jobId), inArray(transfers.state, [...T.cancel.from]));
        // Queued transfers that ran before may have left partial files behind.
        const interrupted = tx
          .select()
          .from(transfers)
          .where(and(cancellable, gt(transfers.attempts, 0)))
          .all();
        tx.update(jobs).set({ state: J.cancel.to, waitingReason: null, waitingHint: null }).where(eq(jobs.id, jobId)).run();
        tx.update(transfers).set({ state: T.cancel.to, finishedAt: now }).where(cancellable).run();
        const running = tx
          .select({ id: transfers.id })
          .from(transfers)
          .where(and(eq(transfers.jobId, jobId), eq(transfers.state, T.start.to)))
          .all()
          .map((r) => r.id);
        return { job: { ...job, state: J.cancel.to }, running, interrupted };
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
          // A recall is asked for afresh: the old request and its pin may be long gone.
          .set({ state: T.retry.to, attempts: 0, notBefore: 0, errorCode: null, errorMessage: null, errorHint: null, finishedAt: null, bytesDone: 0, stageRequest: null, stagedAt: null })
          .where(and(eq(transfers.jobId, jobId), inArray(transfers.state, [...T.retry.from]), sql`coalesce(${transfers.errorCode}, '') != 'API_BAD_REQUEST'`))
          .run();
        if (res.changes > 0) {
          tx.update(jobs)
            .set({ state: J.retry.to, finishedAt: null, errorCode: null, errorMessage: null, errorHint: null })
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
        const orphan = and(inArray(transfers.state, [...T.recover.from]), or(sql`${transfers.runId} is null`, sql`${transfers.runId} != ${runId}`));
        const cancelledJobs = tx.select({ id: jobs.id }).from(jobs).where(eq(jobs.state, J.cancel.to));
        tx.update(transfers)
          .set({ state: T.recoverCancelled.to, runId: null, finishedAt: Date.now() })
          .where(and(orphan, inArray(transfers.jobId, cancelledJobs)))
          .run();
        return tx.update(transfers).set({ state: T.recover.to, runId: null, notBefore: 0 }).where(orphan).run().changes;
      });
    },
  };
}
