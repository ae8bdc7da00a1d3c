import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { JOB_KINDS, RUN_STATES } from '../domain.js';
import { among, TRANSFER_MOVES } from './model.js';

/** The partial indexes hold the transfers the scheduler may start. */
const QUEUED = among(TRANSFER_MOVES.start.from);

export const jobs = sqliteTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: JOB_KINDS }).notNull(),
    state: text('state', { enum: RUN_STATES }).notNull(),
    createdAt: integer('created_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
    /** The job's explicit bearer token. Plaintext in the 0600 database until the wallet seals it. */
    token: text('token'),
    /** A copy's separate token for its source; kept like `token`. */
    sourceToken: text('source_token'),
    /** JSON of JobOptions (checksum algorithm, overwrite, ...). */
    options: text('options').notNull().default('{}'),
    transferCount: integer('transfer_count').notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    errorHint: text('error_hint'),
    waitingReason: text('waiting_reason'),
    waitingHint: text('waiting_hint'),
    // Tallies of the job's transfers, kept by a trigger on `transfers` (migration 0004), so a
    // job's view costs one row read however many transfers it has.
    queuedCount: integer('queued_count').notNull().default(0),
    waitingCount: integer('waiting_count').notNull().default(0),
    runningCount: integer('running_count').notNull().default(0),
    succeededCount: integer('succeeded_count').notNull().default(0),
    failedCount: integer('failed_count').notNull().default(0),
    cancelledCount: integer('cancelled_count').notNull().default(0),
    skippedCount: integer('skipped_count').notNull().default(0),
    bytesDone: integer('bytes_done').notNull().default(0),
    /** The sum of the known sizes; `bytesUnknown` transfers have none yet. */
    bytesTotal: integer('bytes_total').notNull().default(0),
    bytesUnknown: integer('bytes_unknown').notNull().default(0),
    /**
     * Its transfers are still arriving (a submission streamed in): hidden from the queue and the
     * API until they are all in. One left so by a stopped agent is removed at the next start.
     */
    receiving: integer('receiving', { mode: 'boolean' }).notNull().default(false),
    /** Its files are recalled from tape first (a prestage, or a get or copy with --stage): the stager's before the scheduler's. */
    needsStage: integer('needs_stage', { mode: 'boolean' }).notNull().default(false),
    /** A -r job: JSON of the trees it transfers (ListRoot[]), listed by the agent into its transfers. */
    listRoots: text('list_roots'),
    /** When its trees were all listed; null while listing, or when the listing failed or was cut off. */
    listedAt: integer('listed_at'),
  },
  (t) => [index('jobs_state_created').on(t.state, t.createdAt), index('jobs_created').on(t.createdAt)],
);

export const transfers = sqliteTable(
  'transfers',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    idx: integer('idx').notNull(),
    source: text('source').notNull(),
    destination: text('destination').notNull(),
    /** scheme://host:port the per-host limit counts against. */
    host: text('host').notNull(),
    state: text('state', { enum: RUN_STATES }).notNull(),
    bytesDone: integer('bytes_done').notNull().default(0),
    bytesTotal: integer('bytes_total'),
    attempts: integer('attempts').notNull().default(0),
    /** Epoch ms before which a queued transfer must not start (retry backoff). */
    notBefore: integer('not_before').notNull().default(0),
    /** `algorithm:value`, computed while streaming. */
    checksumValue: text('checksum_value'),
    /** Whether the server's digest matched it (false: the server reported none). */
    checksumVerified: integer('checksum_verified', { mode: 'boolean' }),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    errorHint: text('error_hint'),
    waitingReason: text('waiting_reason'),
    waitingHint: text('waiting_hint'),
    /**
     * Waiting because its host stopped answering (the scheduler's host health), not for the user:
     * opening the wallet does not resume it; the host's recovery, or the next agent start, does.
     */
    waitingForHost: integer('waiting_for_host', { mode: 'boolean' }).notNull().default(false),
    /** The tape recall (stage request) that holds it while its file comes from tape; see stageRequests. */
    stageRequest: integer('stage_request'),
    /** Its source is on disk (recalled): a `--stage` transfer goes on to move it, then releases it. */
    stagedAt: integer('staged_at'),
    /** A federation's transfer: the server that served it, `https://host:port`. */
    servedBy: text('served_by'),
    /** A federation's transfer: JSON `[{server, error}]`, the servers left before, and why. */
    serverAttempts: text('server_attempts'),
    /** The agent run that started it: rows left running by a crashed run are found by this. */
    runId: text('run_id'),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    uniqueIndex('transfers_job_idx').on(t.jobId, t.idx),
    // No two transfers of a job write one destination: checked here, as the transfers arrive,
    // rather than in a set of 100,000 paths in the agent's memory.
    uniqueIndex('transfers_job_destination').on(t.jobId, t.destination),
    index('transfers_job_state').on(t.jobId, t.state),
    // Partial: only queued transfers are in them, so a transfer that runs and ends leaves them
    // alone (a job of many small files writes fewer index pages per transfer).
    index('transfers_queued_by_host').on(t.host, t.id).where(sql`${t.state} ${sql.raw(QUEUED)}`),
    index('transfers_queued_due').on(t.notBefore).where(sql`${t.state} ${sql.raw(QUEUED)}`),
    index('transfers_waiting_for_host').on(t.host, t.id).where(sql`${t.waitingForHost} = 1`),
    index('transfers_stage_request').on(t.stageRequest).where(sql`${t.stageRequest} IS NOT NULL`),
  ],
);

/**
 * Tape recalls: one row per stage request made (or being made) at a tape endpoint, with one
 * credential. Everything needed to poll it again after a restart is here.
 */
export const stageRequests = sqliteTable(
  'stage_requests',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** The tape API's base URI, from the storage's discovery document. */
    endpoint: text('endpoint').notNull(),
    /** The storage origin the endpoint was discovered at. */
    origin: text('origin').notNull(),
    /** Whose token the request goes with: `wallet:<credential id>`, `token:<hash>` or `none`. */
    credential: text('credential').notNull(),
    /** The storage's id for it; null until the storage took it. */
    requestId: text('request_id'),
    createdAt: integer('created_at').notNull(),
    nextPollAt: integer('next_poll_at').notNull(),
    pollDelayMs: integer('poll_delay_ms').notNull(),
    polls: integer('polls').notNull().default(0),
    lastPolledAt: integer('last_polled_at'),
    /** Why the last poll did not answer (kept, not fatal: the storage works on). */
    lastError: text('last_error'),
    /** Resubmitted once after the storage forgot it (404). */
    resubmitted: integer('resubmitted', { mode: 'boolean' }).notNull().default(false),
    finishedAt: integer('finished_at'),
  },
  (t) => [index('stage_requests_open').on(t.nextPollAt).where(sql`${t.finishedAt} IS NULL`)],
);

export type JobRow = typeof jobs.$inferSelect;
export type TransferRow = typeof transfers.$inferSelect;
export type StageRequestRow = typeof stageRequests.$inferSelect;
