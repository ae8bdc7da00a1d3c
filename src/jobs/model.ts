import { FINAL_STATES, type FinalState, type RunState } from '../domain.js';
import type { ErrorInfo } from '../errors.js';
import type { JobRow } from './schema.js';

/**
 * The job model's state machine: every change of a transfer's or a job's state is one of the
 * moves below, from the states it may leave to the one it enters. The store's statements are
 * written from this table (see `states` and `state`), so a state is named in the model only,
 * and one place (`transferEnd`, `jobEnd`) says what a transfer or a job records when it ends.
 */
export interface Move {
  from: readonly RunState[];
  to: RunState | readonly RunState[];
}

export const TRANSFER_MOVES = {
  /** The scheduler starts it (an attempt). */
  start: { from: ['queued'], to: 'running' },
  /** It ended for good: done, failed, or stopped by its job's cancellation. */
  succeed: { from: ['running'], to: 'succeeded' },
  fail: { from: ['running'], to: 'failed' },
  stop: { from: ['running'], to: 'cancelled' },
  /** The destination already holds the same file (--skip-existing, --sync): nothing was sent. */
  skip: { from: ['running'], to: 'skipped' },
  /** A transient failure (with a backoff) or an interruption: back to the queue. */
  requeue: { from: ['running'], to: 'queued' },
  /** It needs the user: a credential, the open wallet. */
  wait: { from: ['running'], to: 'waiting' },
  /** The user acted (a credential appeared, the wallet opened). */
  resume: { from: ['waiting'], to: 'queued' },
  /** Its host stopped answering: it waits for the host, not the user. */
  park: { from: ['queued'], to: 'waiting' },
  /** The host's probe, its recovery, or the agent's start. */
  unpark: { from: ['waiting'], to: 'queued' },
  /** Its host has not answered for hostDownFailAfterMs. */
  giveUp: { from: ['waiting'], to: 'failed' },
  /** Its job was cancelled before it ran (again). */
  cancel: { from: ['queued', 'waiting'], to: 'cancelled' },
  /** `petrel job retry`. */
  retry: { from: ['failed', 'cancelled'], to: 'queued' },
  /** Taken into a tape recall (a stage request being filled, or made and polled). */
  hold: { from: ['queued'], to: 'waiting' },
  /** Its file is on disk: a --stage transfer goes on to move it. */
  staged: { from: ['waiting'], to: 'queued' },
  /** A prestage ends: the file is on disk; or the storage's verdict, or the stage timeout, fails it. */
  recalled: { from: ['waiting'], to: 'succeeded' },
  recallFailed: { from: ['waiting'], to: 'failed' },
  /** A recall never made (the agent stopped while it filled, or a token is missing): back to the stager's queue. */
  unhold: { from: ['waiting'], to: 'queued' },
  /** Left running by a stopped agent: queued again, or cancelled with its cancelled job. */
  recover: { from: ['running'], to: 'queued' },
  recoverCancelled: { from: ['running'], to: 'cancelled' },
} as const satisfies Record<string, Move>;

export const JOB_MOVES = {
  /** One of its transfers starts. */
  start: { from: ['queued', 'waiting'], to: 'running' },
  /** Its transfers that are left all wait (for the user or a host). */
  wait: { from: ['queued', 'running', 'waiting'], to: 'waiting' },
  settle: { from: ['running'], to: 'waiting' },
  /** Work of a waiting job is queued again. */
  requeue: { from: ['waiting'], to: 'queued' },
  cancel: { from: ['listing', 'queued', 'waiting', 'running'], to: 'cancelled' },
  /** A -r job's trees are listed (or the listing failed): its state is its transfers'. */
  listed: { from: ['listing'], to: ['queued', 'waiting', 'running'] },
  /** `petrel job retry` of a job whose listing did not end (retryJob may have just re-queued it): list the trees again. */
  relist: { from: ['failed', 'cancelled', 'listing', 'queued'], to: 'listing' },
  /** No transfer is left to run: which end, jobEnd says. */
  finish: { from: ['queued', 'waiting', 'running', 'cancelled'], to: FINAL_STATES },
  retry: { from: ['failed', 'cancelled'], to: 'queued' },
} as const satisfies Record<string, Move>;

export type TransferMove = keyof typeof TRANSFER_MOVES;
/** The moves that end a transfer from the scheduler. */
export type TransferEndMove = 'succeed' | 'fail' | 'stop' | 'skip' | 'recalled' | 'recallFailed';

/** The state a job and its transfers are stored in. */
export const INITIAL_STATE = 'queued' satisfies RunState;

/** Transfers in these states are still to run: a job with none left is done. */
export const UNFINISHED_STATES = ['queued', 'waiting', 'running'] as const satisfies readonly RunState[];

/** A job or transfer that runs now. */
export const isRunning = (s: RunState): boolean => s === TRANSFER_MOVES.start.to;
/** Waiting its turn in the queue (perhaps in a retry's backoff). */
export const isQueued = (s: RunState): boolean => s === INITIAL_STATE;

/** A state as an SQL literal, for the store's statements. */
export const state = (s: RunState): string => `'${s}'`;
/** States as an SQL list, `('queued', 'waiting')`. */
export const states = (list: readonly RunState[]): string => `(${list.map(state).join(', ')})`;
/** The SQL test for a column being one of `list`: `= 'queued'` for one (as partial indexes need), `IN (...)` for more. */
export const among = (list: readonly RunState[]): string => (list.length === 1 ? `= ${state(list[0] as RunState)}` : `IN ${states(list)}`);

/** What the scheduler reports of a transfer that ended. */
export interface TransferOutcome {
  move: TransferEndMove;
  bytesDone: number;
  bytesTotal: number | null;
  checksum?: { algorithm: string; value: string; verified: boolean } | undefined;
  error?: ErrorInfo | undefined;
  servedBy?: string | undefined;
  serverAttempts?: readonly { server: string; error: string }[] | undefined;
}

/** The fields a transfer's end writes, in one statement (rclone's finish()). */
export function transferEnd(outcome: TransferOutcome, now: number) {
  return {
    state: TRANSFER_MOVES[outcome.move].to as FinalState,
    bytesDone: outcome.bytesDone,
    bytesTotal: outcome.bytesTotal,
    checksumValue: outcome.checksum ? `${outcome.checksum.algorithm}:${outcome.checksum.value}` : null,
    checksumVerified: outcome.checksum ? Number(outcome.checksum.verified) : null,
    errorCode: outcome.error?.code ?? null,
    errorMessage: outcome.error?.message ?? null,
    errorHint: outcome.error?.hint ?? null,
    servedBy: outcome.servedBy ?? null,
    serverAttempts: outcome.serverAttempts?.length ? JSON.stringify(outcome.serverAttempts) : null,
    finishedAt: now,
  };
}

/** A -r job whose trees are not all listed: it is listing, or its listing failed or was cut off. */
export const isUnlisted = (job: Pick<JobRow, 'listRoots' | 'listedAt'>): boolean => job.listRoots !== null && job.listedAt === null;

/** The first failed transfer of a job and how many failed, for its end. */
export interface FailureSummary {
  first: { source: string; errorCode: string | null; errorMessage: string | null; errorHint: string | null } | undefined;
  count: number;
}

/**
 * A job's end, once no transfer of it is left to run: cancelled if it was, else failed if any
 * transfer failed (with the first failure's error), else succeeded. A succeeded job has nothing
 * left to retry: its explicit tokens are no longer kept.
 */
export function jobEnd(job: Pick<JobRow, 'state' | 'transferCount' | 'listRoots' | 'listedAt'>, failures: FailureSummary, now: number): Partial<JobRow> {
  // A -r job whose listing failed keeps the listing's error (written when it failed).
  const listingFailed = isUnlisted(job);
  const ended: FinalState = job.state === 'cancelled' ? 'cancelled' : failures.first || listingFailed ? 'failed' : 'succeeded';
  const set: Partial<JobRow> = { state: ended, finishedAt: now, waitingReason: null, waitingHint: null };
  if (ended === 'succeeded') Object.assign(set, { token: null, sourceToken: null });
  if (ended === 'failed' && failures.first && !listingFailed) {
    const f = failures.first;
    set.errorCode = f.errorCode;
    set.errorMessage = job.transferCount === 1 ? f.errorMessage : `${failures.count} of ${job.transferCount} transfers failed; the first: ${f.source}: ${f.errorMessage ?? f.errorCode}`;
    set.errorHint = f.errorHint;
  }
  return set;
}
