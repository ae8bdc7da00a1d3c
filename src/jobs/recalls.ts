import { and, asc, eq, getTableColumns, inArray, isNotNull, isNull, lte, min, sql } from 'drizzle-orm';
import type { RunState } from '../domain.js';
import type { ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import { JOB_MOVES, TRANSFER_MOVES, transferEnd } from './model.js';
import type { RunnableTransfer } from './records.js';
import { jobs, stageRequests, transfers, type StageRequestRow } from './schema.js';

const T = TRANSFER_MOVES;
const J = JOB_MOVES;
/** A held transfer let go: back to the stager's queue, out of its request. */
const LET_GO = { state: T.unhold.to, stageRequest: null, waitingReason: null, waitingHint: null };

/** A transfer held by a recall, with what the stager needs of its job. */
export type HeldTransfer = RunnableTransfer;

/**
 * The tape recalls' part of the store: stage requests (one row each, all a restart needs to poll
 * them again) and the transfers they hold. A held transfer `waits` with the reason shown to the
 * user; once its file is on disk a prestage ends and a --stage transfer is queued to move it.
 */
export function createRecalls(db: Db) {
  // A transfer's columns (from the schema) with its job's kind, tokens and options.
  const heldColumns = { ...getTableColumns(transfers), kind: jobs.kind, token: jobs.token, sourceToken: jobs.sourceToken, options: jobs.options };

  const count = (jobId: string, states: readonly RunState[]) =>
    db.select({ n: sql<number>`count(*)` }).from(transfers).where(and(eq(transfers.jobId, jobId), inArray(transfers.state, [...states]))).get()?.n ?? 0;

  /**
   * A job's state after its transfers were held or let go: running while any runs; else queued
   * while any is queued; else waiting (with `reason`, when given). Its end is finishJobIfDone's.
   */
  function settleJobs(jobIds: Iterable<string>, reason?: string): void {
    for (const jobId of new Set(jobIds)) {
      if (count(jobId, [T.start.to])) continue;
      const queued = count(jobId, T.start.from);
      const waits = count(jobId, [T.wait.to]);
      const set = queued
        ? { state: J.requeue.to, ...(waits ? {} : { waitingReason: null, waitingHint: null }) }
        : waits
          ? { state: J.wait.to, ...(reason ? { waitingReason: reason, waitingHint: null } : {}) }
          : undefined;
      if (set) db.update(jobs).set(set).where(and(eq(jobs.id, jobId), isNull(jobs.finishedAt), inArray(jobs.state, [...J.wait.from]))).run();
    }
  }

  const stagingJobs = () => db.select({ id: jobs.id }).from(jobs).where(and(eq(jobs.needsStage, true), isNull(jobs.finishedAt)));

  return {
    /** Queued transfers whose file must come from tape first, oldest first. */
    toStage(limit: number, now = Date.now()): HeldTransfer[] {
      // From the unfinished jobs that stage, by their transfers' (job, state) index: read from the
      // transfers' side, a queue of 100,000 plain gets made each call 37 ms (0.1 ms this way).
      return db
        .select(heldColumns)
        .from(transfers)
        .innerJoin(jobs, eq(jobs.id, transfers.jobId))
        .where(
          and(
            inArray(transfers.jobId, stagingJobs()),
            inArray(transfers.state, [...T.hold.from]),
            eq(jobs.needsStage, true),
            isNull(transfers.stagedAt),
            lte(transfers.notBefore, now),
            eq(jobs.receiving, false),
            sql`${jobs.state} != ${J.cancel.to}`,
          ),
        )
        .orderBy(asc(transfers.id))
        .limit(limit)
        .all();
    },

    /**
     * Transfers whose source no tape API serves (a federation URL: its caches are warmed by the
     * engine instead) are handed straight to the scheduler, as if already on disk.
     */
    passOver(ids: readonly number[], now = Date.now()): void {
      if (!ids.length) return;
      db.update(transfers)
        .set({ stagedAt: now })
        .where(and(inArray(transfers.id, [...ids]), inArray(transfers.state, [...T.hold.from])))
        .run();
    },

    /** When the next file put back for later (a busy or backed-off endpoint) becomes due, after `now`. */
    nextToStageAt(now = Date.now()): number | undefined {
      return (
        db
          .select({ at: min(transfers.notBefore) })
          .from(transfers)
          .innerJoin(jobs, eq(jobs.id, transfers.jobId))
          .where(and(inArray(transfers.jobId, stagingJobs()), inArray(transfers.state, [...T.hold.from]), eq(jobs.needsStage, true), isNull(transfers.stagedAt), sql`${transfers.notBefore} > ${now}`, sql`${jobs.state} != ${J.cancel.to}`))
          .get()?.at ?? undefined
      );
    },

    /** A stage request being filled: not yet sent (requestId null). */
    openRequest(r: { endpoint: string; origin: string; credential: string }, now = Date.now()): number {
      return db
        .insert(stageRequests)
        .values({ ...r, createdAt: now, nextPollAt: Number.MAX_SAFE_INTEGER, pollDelayMs: 0 })
        .returning({ id: stageRequests.id })
        .get().id;
    },

    /** Transfers taken into request `requestRow`: they wait, with the reason. */
    hold(transferIds: readonly number[], requestRow: number, reason: string): void {
      if (!transferIds.length) return;
      db.transaction(() => {
        const jobIds = db
          .update(transfers)
          .set({ state: T.hold.to, stageRequest: requestRow, waitingReason: reason, waitingHint: null })
          .where(and(inArray(transfers.id, [...transferIds]), inArray(transfers.state, [...T.hold.from])))
          .returning({ jobId: transfers.jobId })
          .all()
          .map((r) => r.jobId);
        settleJobs(jobIds, reason);
      });
    },

    /** The storage took the request: it is polled from `firstPollAt`. */
    submitted(requestRow: number, requestId: string, opts: { now: number; firstPollMs: number; reason: string }): void {
      db.transaction(() => {
        db.update(stageRequests)
          .set({ requestId, nextPollAt: opts.now + opts.firstPollMs, pollDelayMs: opts.firstPollMs, lastError: null })
          .where(eq(stageRequests.id, requestRow))
          .run();
        const jobIds = db
          .update(transfers)
          .set({ waitingReason: opts.reason })
          .where(and(eq(transfers.stageRequest, requestRow), eq(transfers.state, T.hold.to)))
          .returning({ jobId: transfers.jobId })
          .all()
          .map((r) => r.jobId);
        db.update(jobs)
          .set({ waitingReason: opts.reason, waitingHint: null })
          .where(and(inArray(jobs.id, [...new Set(jobIds)]), isNull(jobs.finishedAt)))
          .run();
      });
    },

    /** Moves transfers to another request row (a 413 split a batch into several requests). */
    move(transferIds: readonly number[], requestRow: number): void {
      if (transferIds.length) db.update(transfers).set({ stageRequest: requestRow }).where(inArray(transfers.id, [...transferIds])).run();
    },

    getRequest(id: number): StageRequestRow | undefined {
      return db.select().from(stageRequests).where(eq(stageRequests.id, id)).get();
    },

    /** Requests sent and not finished whose poll is due by `now`. */
    dueRequests(now: number): StageRequestRow[] {
      return db
        .select()
        .from(stageRequests)
        .where(and(isNull(stageRequests.finishedAt), isNotNull(stageRequests.requestId), lte(stageRequests.nextPollAt, now)))
        .orderBy(asc(stageRequests.nextPollAt))
        .all();
    },

    nextPollAt(): number | undefined {
      return db.select({ at: min(stageRequests.nextPollAt) }).from(stageRequests).where(and(isNull(stageRequests.finishedAt), isNotNull(stageRequests.requestId))).get()?.at ?? undefined;
    },

    /** Requests sent and not finished, per endpoint. */
    outstanding(endpoint: string): number {
      return (
        db
          .select({ n: sql<number>`count(*)` })
          .from(stageRequests)
          .where(and(eq(stageRequests.endpoint, endpoint), isNull(stageRequests.finishedAt), isNotNull(stageRequests.requestId)))
          .get()?.n ?? 0
      );
    },

    /** What a request still holds: transfers waiting for their file. */
    held(requestRow: number): HeldTransfer[] {
      return db
        .select(heldColumns)
        .from(transfers)
        .innerJoin(jobs, eq(jobs.id, transfers.jobId))
        .where(and(eq(transfers.stageRequest, requestRow), eq(transfers.state, T.hold.to), isNull(transfers.stagedAt)))
        .orderBy(asc(transfers.id))
        .all();
    },

    /** Any transfer a request held (for its token), whatever became of it. */
    anyOf(requestRow: number): HeldTransfer | undefined {
      return db.select(heldColumns).from(transfers).innerJoin(jobs, eq(jobs.id, transfers.jobId)).where(eq(transfers.stageRequest, requestRow)).limit(1).get();
    },

    /** Whether a request holds files on disk that have not moved yet (--stage transfers still to run). */
    stillToMove(requestRow: number): boolean {
      return Boolean(
        db
          .select({ id: transfers.id })
          .from(transfers)
          .where(and(eq(transfers.stageRequest, requestRow), isNotNull(transfers.stagedAt), isNull(transfers.finishedAt)))
          .limit(1)
          .get(),
      );
    },

    /** A poll answered (or not: `error`); the next comes after `delayMs`. */
    polled(requestRow: number, opts: { now: number; delayMs: number; error?: string | undefined }): void {
      db.update(stageRequests)
        .set({ polls: sql`${stageRequests.polls} + 1`, lastPolledAt: opts.now, nextPollAt: opts.now + opts.delayMs, pollDelayMs: opts.delayMs, lastError: opts.error ?? null })
        .where(eq(stageRequests.id, requestRow))
        .run();
    },

    /** The storage forgot the request (404): what it held is asked for again, once, under `requestId`. */
    resubmitted(requestRow: number, requestId: string, opts: { now: number; firstPollMs: number }): void {
      db.update(stageRequests)
        .set({ requestId, resubmitted: true, nextPollAt: opts.now + opts.firstPollMs, pollDelayMs: opts.firstPollMs })
        .where(eq(stageRequests.id, requestRow))
        .run();
    },

    /**
     * Files on disk: a prestage's transfer succeeds; a --stage transfer is queued to move its file
     * (`stagedAt` set, the request kept for the release). Returns the jobs that changed.
     */
    onDisk(items: readonly { transfer: HeldTransfer; movesOn: boolean }[], now = Date.now()): string[] {
      return db.transaction(() => {
        for (const { transfer, movesOn } of items) {
          if (movesOn) {
            db.update(transfers)
              .set({ state: T.staged.to, stagedAt: now, waitingReason: null, waitingHint: null, notBefore: 0 })
              .where(and(eq(transfers.id, transfer.id), inArray(transfers.state, [...T.staged.from])))
              .run();
          } else {
            db.update(transfers)
              .set({ ...transferEnd({ move: 'recalled', bytesDone: 0, bytesTotal: null }, now), waitingReason: null, waitingHint: null, stagedAt: now, checksumVerified: null })
              .where(and(eq(transfers.id, transfer.id), inArray(transfers.state, [...T.recalled.from])))
              .run();
          }
        }
        const jobIds = items.map((i) => i.transfer.jobId);
        settleJobs(jobIds);
        return [...new Set(jobIds)];
      });
    },

    /** The storage's per-file verdict (or the stage timeout): the transfers fail with `error`. */
    failed(items: readonly { transfer: HeldTransfer; error: ErrorInfo }[], now = Date.now()): string[] {
      return db.transaction(() => {
        for (const { transfer, error } of items) {
          db.update(transfers)
            .set({ ...transferEnd({ move: 'recallFailed', bytesDone: 0, bytesTotal: null, error }, now), waitingReason: null, waitingHint: null, checksumVerified: null })
            .where(and(eq(transfers.id, transfer.id), inArray(transfers.state, [...T.recallFailed.from])))
            .run();
        }
        return [...new Set(items.map((i) => i.transfer.jobId))];
      });
    },

    /** Held transfers go back to the stager's queue, due at `notBefore` (a request that could not be sent yet). */
    unhold(transferIds: readonly number[], notBefore = 0): string[] {
      if (!transferIds.length) return [];
      return db.transaction(() => {
        const jobIds = db
          .update(transfers)
          .set({ ...LET_GO, notBefore })
          .where(and(inArray(transfers.id, [...transferIds]), inArray(transfers.state, [...T.unhold.from])))
          .returning({ jobId: transfers.jobId })
          .all()
          .map((r) => r.jobId);
        settleJobs(jobIds);
        return [...new Set(jobIds)];
      });
    },

    /** A request that was never sent (its transfers were let go). */
    dropRequest(requestRow: number): void {
      db.delete(stageRequests).where(and(eq(stageRequests.id, requestRow), isNull(stageRequests.requestId))).run();
    },

    finishRequest(requestRow: number, now = Date.now()): void {
      db.update(stageRequests).set({ finishedAt: now }).where(eq(stageRequests.id, requestRow)).run();
    },

    /** At start: requests a stopped agent was still filling were never sent; their transfers are the stager's again. */
    dropUnsent(): number {
      return db.transaction(() => {
        const unsent = db.select({ id: stageRequests.id }).from(stageRequests).where(and(isNull(stageRequests.requestId), isNull(stageRequests.finishedAt))).all().map((r) => r.id);
        if (!unsent.length) return 0;
        const n = db
          .update(transfers)
          .set(LET_GO)
          .where(and(inArray(transfers.stageRequest, unsent), inArray(transfers.state, [...T.unhold.from])))
          .run().changes;
        db.delete(stageRequests).where(inArray(stageRequests.id, unsent)).run();
        return n;
      });
    },

    /** A job's transfers held by sent requests, by request: what a cancel must withdraw at the storage. */
    heldByJob(jobId: string): { request: StageRequestRow; paths: HeldTransfer[] }[] {
      const rows = db
        .select(heldColumns)
        .from(transfers)
        .innerJoin(jobs, eq(jobs.id, transfers.jobId))
        .where(and(eq(transfers.jobId, jobId), isNotNull(transfers.stageRequest), eq(transfers.state, T.hold.to), isNull(transfers.stagedAt)))
        .all();
      const byRequest = new Map<number, HeldTransfer[]>();
      for (const r of rows) byRequest.set(r.stageRequest as number, [...(byRequest.get(r.stageRequest as number) ?? []), r]);
      return [...byRequest].flatMap(([id, held]) => {
        const request = db.select().from(stageRequests).where(eq(stageRequests.id, id)).get();
        return request?.requestId ? [{ request, paths: held }] : [];
      });
    },

    /** How a job's recalls stand, for its view. */
    jobRecalls(jobId: string): { requests: number; lastPolledAt: number | null } | undefined {
      const r = db
        .select({ requests: sql<number>`count(distinct ${stageRequests.id})`, lastPolledAt: sql<number | null>`max(${stageRequests.lastPolledAt})` })
        .from(stageRequests)
        .innerJoin(transfers, eq(transfers.stageRequest, stageRequests.id))
        .where(and(eq(transfers.jobId, jobId), isNotNull(stageRequests.requestId)))
        .get();
      return r && r.requests ? { requests: r.requests, lastPolledAt: r.lastPolledAt } : undefined;
    },
  };
}

export type Recalls = ReturnType<typeof createRecalls>;
