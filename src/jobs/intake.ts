import { randomBytes } from 'node:crypto';
import { eq, or, sql } from 'drizzle-orm';
import type { TokenSlot } from '../domain.js';
import type { Db } from './database.js';
import { INITIAL_STATE, JOB_MOVES } from './model.js';
import { needsStage } from './options.js';
import type { DuplicateDestination, NewJob, NewJobHeader, NewTransfer } from './records.js';
import { jobs, type JobRow } from './schema.js';
import { DuplicateFound, type Statements } from './statements.js';

function newJobId(): string {
  // 10 base32 characters: short enough to type, 50 bits of randomness.
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(10);
  let id = '';
  for (const b of bytes) id += alphabet[b % 32];
  return id;
}

/** How jobs come in (open, add, complete, drop) and how their explicit tokens are kept. */
export function createIntake(db: Db, st: Statements) {
  /**
   * Writes a job whose transfers follow as they arrive (addTransfers). It stays out of the
   * queue and out of sight until completeJob; dropJob takes it back.
   */
  function openJob(job: NewJobHeader, now = Date.now()): string {
    const id = newJobId();
    const protect = (column: TokenSlot['column'], token: string | undefined) => (token ? (job.protectToken ? job.protectToken({ jobId: id, column }, token) : token) : null);
    const row: JobRow = {
      id,
      kind: job.kind,
      state: job.listRoots ? JOB_MOVES.relist.to : INITIAL_STATE,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      token: protect('token', job.token),
      sourceToken: protect('sourceToken', job.sourceToken),
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
      skippedCount: 0,
      bytesDone: 0,
      bytesTotal: 0,
      bytesUnknown: 0,
      receiving: true,
      needsStage: needsStage(job.kind, job.options),
      listRoots: job.listRoots ? JSON.stringify(job.listRoots) : null,
      listedAt: null,
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
      st.insertTransfers(jobId, first, batch);
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
    if (st.completeJob.run({ id: jobId, count, now }).changes !== 1) throw new Error(`job ${jobId} is not being received`);
    return st.getJob.get(jobId) as JobRow;
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
      st.dropReceiving.run(jobId);
    },

    /** At start: jobs that a stopped agent was still receiving. Returns how many. */
    dropIncompleteJobs(): number {
      return st.dropAllReceiving.run().changes;
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
  };
}
