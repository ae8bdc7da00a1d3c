import { and, asc, desc, eq, gt, lt, or, type SQL } from 'drizzle-orm';
import type { Counts } from '../api/index.js';
import type { RunState } from '../domain.js';
import { PetrelError } from '../errors.js';
import type { Db } from './database.js';
import type { ByteTotals } from './records.js';
import { jobs, transfers, type JobRow, type TransferRow } from './schema.js';
import type { Statements } from './statements.js';

function emptyCounts(): Counts {
  return { total: 0, queued: 0, waiting: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0 };
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
    skipped: row.skippedCount,
  };
}

/** Bytes done and, once every transfer's size is known, bytes in all. */
export function byteTotalsOf(row: JobRow): ByteTotals {
  return { bytesDone: row.bytesDone, bytesTotal: row.bytesUnknown ? null : row.bytesTotal };
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

/** What the API and the views read: jobs, pages of jobs and transfers, counts. */
export function createReads(db: Db, st: Statements) {
  return {
    getJob(id: string): JobRow | undefined {
      return st.getJob.get(id) as JobRow | undefined;
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
      const row = st.getJob.get(jobId) as JobRow | undefined;
      return row ? countsOf(row) : emptyCounts();
    },

    byteTotals(jobId: string): ByteTotals {
      const row = st.getJob.get(jobId) as JobRow | undefined;
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
      return st.getTransfer.get(id) as TransferRow | undefined;
    },

    /** Jobs left unfinished with nothing left to run (a crash between a transfer's end and its job's). */
    unfinishedJobIds(): string[] {
      return (st.unfinishedJobs.all() as { id: string }[]).map((r) => r.id);
    },

    queueCounts(): { running: number; queued: number; waiting: number } {
      const r = st.queueCounts.get() as { running: number | null; queued: number | null; waiting: number | null };
      return { running: r.running ?? 0, queued: r.queued ?? 0, waiting: r.waiting ?? 0 };
    },
  };
}
