import { getTableColumns } from 'drizzle-orm';
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type Database from 'better-sqlite3';
import type { ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import { among, INITIAL_STATE, JOB_MOVES, state, TRANSFER_MOVES, UNFINISHED_STATES } from './model.js';
import type { DuplicateDestination, NewTransfer } from './records.js';
import { jobs, transfers } from './schema.js';

/**
 * The store's raw SQL, prepared once: building and preparing the scheduler's per-transfer
 * queries through the query builder on every call cost more than the transfer of a small file.
 * Column lists come from schema.ts and states from the model's moves (model.ts), so neither is
 * written here by hand. Boolean columns read this way come back as 0 or 1.
 */

/** `alias.sql_name AS "tsName", ...` for every column of `table`. */
function columnsOf(table: SQLiteTable, alias?: string): string {
  const prefix = alias ? `${alias}.` : '';
  return Object.entries(getTableColumns(table))
    .map(([key, column]) => `${prefix}${column.name} AS "${key}"`)
    .join(', ');
}

const TRANSFER_COLUMNS = columnsOf(transfers, 't');
const JOB_COLUMNS = columnsOf(jobs);

const T = TRANSFER_MOVES;
const J = JOB_MOVES;
const UNFINISHED = among(UNFINISHED_STATES);
/** Transfers that hold a job's slot or will: running ones, and queued ones. */
const ACTIVE = among([...T.start.from, T.start.to]);

/** Thrown inside the insert transaction, so that it rolls back. */
export class DuplicateFound extends Error {
  constructor(readonly duplicate: DuplicateDestination) {
    super('duplicate destination');
  }
}

export function prepareStatements(db: Db) {
  const client = db.$client;
  const markTransfer = client.prepare(`UPDATE transfers SET state = ${state(T.start.to)}, run_id = ?, attempts = attempts + 1, started_at = coalesce(started_at, ?) WHERE id = ?`);
  // A -r job still listing records its start, and stays listing.
  const markJob = client.prepare(
    `UPDATE jobs SET state = CASE WHEN state ${among(J.start.from)} THEN ${state(J.start.to)} ELSE state END, started_at = coalesce(started_at, ?), waiting_reason = NULL, waiting_hint = NULL
     WHERE id = ? AND state ${among([...J.start.from, ...J.listed.from])}`,
  );
  const progress = client.prepare('UPDATE transfers SET bytes_done = ?, bytes_total = ? WHERE id = ?');
  const insertTransfer = client.prepare(`INSERT INTO transfers (job_id, idx, source, destination, host, state) VALUES (?, ?, ?, ?, ?, ${state(INITIAL_STATE)})`);
  const earlierWriter = client.prepare('SELECT idx FROM transfers WHERE job_id = ? AND destination = ?').pluck();
  const distinctJobs = (rows: unknown[]) => [...new Set((rows as { jobId: string }[]).map((r) => r.jobId))];
  const parkTransfers = client.prepare(
    `UPDATE transfers INDEXED BY transfers_queued_by_host SET state = ${state(T.park.to)}, waiting_reason = @reason, waiting_hint = @hint, waiting_for_host = 1, not_before = 0
     WHERE host = @host AND state ${among(T.park.from)}
       -- What the stager has still to recall is not the scheduler's to park.
       AND (staged_at IS NOT NULL OR job_id NOT IN (SELECT id FROM jobs WHERE needs_stage = 1))
     RETURNING job_id AS jobId`,
  );
  const markJobWaiting = client.prepare(
    `UPDATE jobs SET waiting_reason = @reason, waiting_hint = @hint,
       state = CASE WHEN EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state ${ACTIVE}) THEN state ELSE ${state(J.wait.to)} END
     WHERE id = @jobId AND finished_at IS NULL AND state ${among(J.wait.from)}`,
  );
  const unparkOne = client.prepare(
    `UPDATE transfers SET state = ${state(T.unpark.to)}, waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0, not_before = 0
     WHERE id = (SELECT id FROM transfers INDEXED BY transfers_waiting_for_host WHERE host = ? AND waiting_for_host = 1 AND state ${among(T.unpark.from)} ORDER BY id LIMIT 1)
     RETURNING job_id AS jobId`,
  );
  const unparkHost = client.prepare(
    `UPDATE transfers SET state = ${state(T.unpark.to)}, waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0, not_before = 0
     WHERE waiting_for_host = 1 AND state ${among(T.unpark.from)} AND (@host IS NULL OR host = @host) RETURNING job_id AS jobId`,
  );
  // A waiting job with work queued again is queued, without a reason unless some transfer still waits.
  const stillWaits = `EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state = ${state(T.wait.to)})`;
  const requeueJob = client.prepare(
    `UPDATE jobs SET state = CASE WHEN state ${among(J.requeue.from)} THEN ${state(J.requeue.to)} ELSE state END,
       waiting_reason = CASE WHEN ${stillWaits} THEN waiting_reason END,
       waiting_hint = CASE WHEN ${stillWaits} THEN waiting_hint END
     WHERE id = @jobId AND finished_at IS NULL`,
  );
  const failParked = client.prepare(
    `UPDATE transfers SET state = ${state(T.giveUp.to)}, error_code = @code, error_message = @message, error_hint = @hint, finished_at = @now,
       waiting_reason = NULL, waiting_hint = NULL, waiting_for_host = 0
     WHERE host = @host AND waiting_for_host = 1 AND state ${among(T.giveUp.from)} RETURNING job_id AS jobId`,
  );
  const nextRunnableSql = (limit: number) =>
      `SELECT ${TRANSFER_COLUMNS}, j.kind AS kind, j.token AS token, j.source_token AS sourceToken, j.options AS options
       FROM transfers t INDEXED BY transfers_queued_by_host JOIN jobs j ON j.id = t.job_id
       WHERE t.state ${among(T.start.from)} AND t.host = ? AND t.not_before <= ? AND j.state != ${state(J.cancel.to)} AND j.receiving = 0
         AND (j.needs_stage = 0 OR t.staged_at IS NOT NULL)
       ORDER BY t.id LIMIT ${Math.max(1, Math.trunc(limit))}`;
  const nextRunnableBy = new Map<number, Database.Statement<[string, number]>>();
  return {
    requeueWaitingJobs: client.prepare(
      `UPDATE jobs SET state = CASE WHEN state ${among(J.requeue.from)} THEN ${state(J.requeue.to)} ELSE state END, waiting_reason = NULL, waiting_hint = NULL
       WHERE finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM transfers WHERE job_id = jobs.id AND state = ${state(T.wait.to)})`,
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
      `UPDATE jobs SET state = ${state(J.settle.to)}
       WHERE id = @jobId AND state ${among(J.settle.from)} AND finished_at IS NULL
         AND EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state = ${state(T.wait.to)})
         AND NOT EXISTS (SELECT 1 FROM transfers WHERE job_id = @jobId AND state ${ACTIVE})`,
    ),
    queueCounts: client.prepare('SELECT sum(running_count) AS running, sum(queued_count) AS queued, sum(waiting_count) AS waiting FROM jobs WHERE finished_at IS NULL'),
    hasUnfinished: client.prepare(`SELECT EXISTS (SELECT 1 FROM transfers WHERE job_id = ? AND state ${UNFINISHED}) AS n`),
    unfinishedJobs: client.prepare('SELECT id FROM jobs WHERE finished_at IS NULL AND receiving = 0'),
    // The distinct hosts with queued transfers, one index seek each (a "loose index scan").
    queuedHosts: client.prepare(
      `WITH RECURSIVE h(host) AS (
         SELECT (SELECT host FROM transfers WHERE state ${among(T.start.from)} ORDER BY host LIMIT 1)
         UNION ALL
         SELECT (SELECT host FROM transfers WHERE state ${among(T.start.from)} AND host > h.host ORDER BY host LIMIT 1) FROM h WHERE h.host IS NOT NULL
       ) SELECT host FROM h WHERE host IS NOT NULL`,
    ),
    /**
     * The next `limit` due transfers of one host. One statement per limit, the limit written in:
     * SQLite answered `LIMIT ?` ~35 µs slower than `LIMIT 1` (12 against 47 µs a call, with the
     * same plan), and the scheduler asks once for every transfer that ends.
     */
    nextRunnableOf(host: string, now: number, limit: number): unknown[] {
      let stmt = nextRunnableBy.get(limit);
      if (!stmt) nextRunnableBy.set(limit, (stmt = client.prepare<[string, number]>(nextRunnableSql(limit))));
      return stmt.all(host, now);
    },
    nextDueAt: client.prepare(`SELECT min(not_before) AS at FROM transfers WHERE state ${among(T.start.from)} AND not_before > ?`),
    finishTransfer: client.prepare(
      `UPDATE transfers SET state = @state, bytes_done = @bytesDone, bytes_total = @bytesTotal, checksum_value = @checksumValue, checksum_verified = @checksumVerified,
       error_code = @errorCode, error_message = @errorMessage, error_hint = @errorHint, served_by = @servedBy, server_attempts = @serverAttempts, finished_at = @finishedAt, run_id = NULL WHERE id = @id`,
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

export type Statements = ReturnType<typeof prepareStatements>;
