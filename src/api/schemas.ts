/**
 * The socket API contract: one schema per request and reply, shared by the agent's routes
 * (validation) and the CLI's client (parsing replies, so a newer CLI notices an older agent).
 */
import { z } from 'zod';
import type { RefreshOutcome as RefreshOutcomeOf } from '../auth/index.js';
import type { ErrorInfo as ErrorInfoOf } from '../errors.js';
import type { WalletEntryView, WalletStatus as WalletStatusOf } from '../wallet/index.js';
import { CHECKSUM_CHOICES, COPY_MODES, DEFAULT_CHECKSUM, DEFAULT_JOB_PAGE, DEFAULT_TRANSFER_PAGE, JOB_KINDS, MAX_TRANSFERS, RUN_STATES, TOKEN_OPERATIONS } from '../domain.js';

export { FINAL_STATES, isFinal, MAX_TRANSFERS } from '../domain.js';

export const API_PREFIX = '/v1';

export const JobKind = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKind>;

export const RunState = z.enum(RUN_STATES);
export type RunState = z.infer<typeof RunState>;

export const ChecksumChoice = z.enum(CHECKSUM_CHOICES);
export type ChecksumChoice = z.infer<typeof ChecksumChoice>;

// The contract's types are the library's (src/errors.ts, src/auth/broker.ts, src/wallet/session.ts);
// each schema here is checked against its type with `satisfies`.
export const ErrorInfo = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
}) satisfies z.ZodType<ErrorInfoOf<string>>;
export type ErrorInfo = ErrorInfoOf<string>;

export const ErrorBody = z.object({ error: ErrorInfo });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const Waiting = z.object({ reason: z.string(), hint: z.string().optional() });

const Location = z.string().min(1).max(8192);

export const TransferSpec = z.object({ source: Location, destination: Location }).strict();
export type TransferSpec = z.infer<typeof TransferSpec>;


export const SubmitJobRequest = z
  .object({
    kind: JobKind,
    transfers: z.array(TransferSpec).min(1).max(MAX_TRANSFERS),
    /** An explicit bearer token for every transfer of the job (unmanaged: never refreshed). */
    token: z.string().min(1).max(65_536).optional(),
    /** A copy's token for reading its source; without it, `token` serves both sides. */
    sourceToken: z.string().min(1).max(65_536).optional(),
    checksum: ChecksumChoice.default(DEFAULT_CHECKSUM),
    /** Copies: COPY to the destination, which pulls (default), or to the source, which pushes. */
    copyMode: z.enum(COPY_MODES).optional(),
    /** Copies: replace an existing destination (else the storage refuses with 412). */
    overwrite: z.boolean().optional(),
    /** Copies: when a storage refuses COPY (405/501), stream the data through the agent. */
    fallback: z.enum(['streamed']).optional(),
    /** Follow redirects from https to plain http (refused by default; the token never goes along). */
    allowInsecureRedirect: z.boolean().optional(),
    /** A destination that already holds the same file (same size; same checksum when both sides report one) is skipped. */
    skipExisting: z.boolean().optional(),
    /** --skip-existing, and a destination that differs is replaced (a copy overwrites). */
    sync: z.boolean().optional(),
    /**
     * Whole trees (-r): each transfer names a directory and the directory its files go under. The
     * agent lists them (the job is `listing` meanwhile) and queues a transfer per file as it goes.
     */
    recursive: z.boolean().optional(),
    /** Puts with `recursive`: follow symbolic links in the local tree (else they are skipped). */
    followSymlinks: z.boolean().optional(),
    /** Gets and copies: recall each source from tape first, then move it as soon as it is on disk. */
    stage: z.boolean().optional(),
    /**
     * Federation reads (pelican://, osdf://): caches to try first, `https://host[:port]`; a last
     * entry `+` tries the director's caches after them (as Pelican's --cache does).
     */
    caches: z
      .array(z.union([z.literal('+'), z.string().url().refine((u) => u.startsWith('https://') || u.startsWith('http://'), 'a cache is an https:// URL')]))
      .min(1)
      .max(20)
      .refine((c) => c.indexOf('+') === -1 || c.indexOf('+') === c.length - 1, 'only the last cache may be "+"')
      .optional(),
    /** Tape recalls: how long the recalled file should stay on disk, ISO 8601 (PT6H, P2D). */
    diskLifetime: z
      .string()
      .regex(/^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$/, 'an ISO 8601 duration of days, hours, minutes, seconds (PT6H)')
      .refine((v) => /[1-9]/.test(v) && !/T$/.test(v), 'a duration longer than zero (PT6H)')
      .optional(),
  })
  .strict();
export type SubmitJobRequest = z.input<typeof SubmitJobRequest>;
export type SubmitJob = z.output<typeof SubmitJobRequest>;

/**
 * The first line of a job sent as NDJSON (`Content-Type: application/x-ndjson`): the request
 * without its transfers, which follow one per line. The agent then never holds the whole body.
 */
export const SubmitJobHeader = SubmitJobRequest.omit({ transfers: true });
export type SubmitJobHeader = z.output<typeof SubmitJobHeader>;
export const NDJSON_TYPE = 'application/x-ndjson';

export const Counts = z.object({
  total: z.number().int(),
  queued: z.number().int(),
  waiting: z.number().int(),
  running: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  /** Transfers whose destination already held the same file (--skip-existing, --sync). */
  skipped: z.number().int(),
});
export type Counts = z.infer<typeof Counts>;

export const TransferView = z.object({
  index: z.number().int(),
  source: z.string(),
  destination: z.string(),
  state: RunState,
  bytesDone: z.number(),
  bytesTotal: z.number().nullable(),
  /** Bytes per second over the last few seconds, while running. */
  rate: z.number(),
  attempts: z.number().int(),
  nextAttemptAt: z.string().optional(),
  /** Computed while streaming; `verified` when the server's digest matched. */
  checksum: z.object({ algorithm: z.string(), value: z.string(), verified: z.boolean() }).optional(),
  /** A federation's transfer: the server (cache or origin) that served it, and those tried before. */
  servedBy: z.string().optional(),
  serverAttempts: z.array(z.object({ server: z.string(), error: z.string() })).optional(),
  error: ErrorInfo.optional(),
  waiting: Waiting.optional(),
  /** Jobs that recall from tape: whether the file is still on tape (its recall asked for) or on disk. */
  tape: z.enum(['on-tape', 'on-disk']).optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});
export type TransferView = z.infer<typeof TransferView>;

export const JobView = z.object({
  id: z.string(),
  kind: JobKind,
  state: RunState,
  checksum: ChecksumChoice,
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  counts: Counts,
  bytesDone: z.number(),
  bytesTotal: z.number().nullable(),
  rate: z.number(),
  error: ErrorInfo.optional(),
  waiting: Waiting.optional(),
  /** Jobs that recall from tape: the stage requests made for them, and when one was last polled. */
  recalls: z.object({ requests: z.number().int(), lastPolledAt: z.string().optional() }).optional(),
  /** A -r job being listed: the directories listed and the files found so far. */
  listing: z.object({ directories: z.number().int(), files: z.number().int() }).optional(),
});
export type JobView = z.infer<typeof JobView>;

export const JobDetail = JobView.extend({
  transfers: z.array(TransferView),
  /** Cursor for the next page of transfers, when there is one. */
  nextTransfers: z.string().optional(),
});
export type JobDetail = z.infer<typeof JobDetail>;

const Limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

export const ListJobsQuery = z
  .object({
    state: RunState.optional(),
    limit: Limit(1000, DEFAULT_JOB_PAGE),
    /** Opaque cursor from a previous page's `next`. */
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type ListJobsQuery = Partial<z.output<typeof ListJobsQuery>>;

export const JobList = z.object({ jobs: z.array(JobView), next: z.string().optional() });
export type JobList = z.infer<typeof JobList>;

export const JobDetailQuery = z
  .object({
    transferState: RunState.optional(),
    transferLimit: Limit(10_000, DEFAULT_TRANSFER_PAGE),
    transferCursor: z.string().max(200).optional(),
  })
  .strict();
export type JobDetailQuery = Partial<z.output<typeof JobDetailQuery>>;

export const JobEventsQuery = z
  .object({
    /** `false` leaves out the per-transfer events (two per file: a job of many small files sends thousands). */
    transfers: z.enum(['true', 'false']).default('true'),
  })
  .strict();
export type JobEventsQuery = z.input<typeof JobEventsQuery>;

export const SubmitJobReply = z.object({ id: z.string(), job: JobView });
export type SubmitJobReply = z.infer<typeof SubmitJobReply>;

export const Health = z.object({
  ok: z.literal(true),
  version: z.string(),
  pid: z.number().int(),
  socket: z.string(),
  database: z.string(),
  startedAt: z.string(),
  socketActivated: z.boolean(),
  counts: z.object({ running: z.number().int(), queued: z.number().int(), waiting: z.number().int() }),
  /** Where explicit job tokens are kept (the wallet issue seals them). */
  /** Where an explicit --token given now would be kept (README "Security model"). */
  tokenStorage: z.enum(['wallet-sealed', 'database-plaintext', 'agent-memory']),
});
export type Health = z.infer<typeof Health>;

export const ShutdownReply = z.object({ stopping: z.literal(true), pid: z.number().int() });

/** Server-sent events of GET /v1/jobs/:id/events. */
export const ProgressEvent = z.object({
  jobId: z.string(),
  bytesDone: z.number(),
  bytesTotal: z.number().nullable(),
  rate: z.number(),
  transfers: z.array(z.object({ index: z.number().int(), bytesDone: z.number(), bytesTotal: z.number().nullable(), rate: z.number() })),
});
export type ProgressEvent = z.infer<typeof ProgressEvent>;

export const JobEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job: JobView }),
  z.object({ type: z.literal('transfer'), jobId: z.string(), transfer: TransferView }),
  z.object({ type: z.literal('progress'), progress: ProgressEvent }),
]);
export type JobEvent = z.infer<typeof JobEvent>;

export const OpenWalletRequest = z
  .object({
    password: z.string().min(1).max(4096),
    /** Seconds after which the wallet closes itself. */
    lifetime: z.number().int().min(1).max(366 * 86_400).optional(),
  })
  .strict();
export type OpenWalletRequest = z.infer<typeof OpenWalletRequest>;

export const WalletStatus = z.object({
  path: z.string(),
  initialized: z.boolean(),
  open: z.boolean(),
  until: z.string().optional(),
  entries: z
    .array(
      z.object({
        id: z.string(),
        issuer: z.string(),
        prefixes: z.array(z.string()),
        scopes: z.array(z.string()),
        accessTokenExpiresAt: z.string().optional(),
        hasRefreshToken: z.boolean(),
        obtainedBy: z.string(),
        dead: z.boolean(),
      }) satisfies z.ZodType<WalletEntryView>,
    )
    .optional(),
}) satisfies z.ZodType<WalletStatusOf>;
export type WalletStatus = WalletStatusOf;

export const RefreshOutcome = z.object({
  refreshed: z.array(z.object({ credential: z.string(), scope: z.string(), expiresAt: z.string() })),
  failed: z.array(z.object({ credential: z.string(), code: z.string(), message: z.string() })),
}) satisfies z.ZodType<RefreshOutcomeOf>;
export type RefreshOutcome = RefreshOutcomeOf;

/** `POST /v1/tokens`: a valid access token for a URL, for other tools (`petrel token`). */
export const TokenRequest = z
  .object({
    url: z.string().url().refine((u) => /^(https?|davs?|pelican|osdf|stash):/.test(u), 'an http(s) or federation (pelican://, osdf://) URL'),
    operation: z.enum(TOKEN_OPERATIONS).default('read'),
  })
  .strict();
export type TokenRequest = z.infer<typeof TokenRequest>;

export const TokenReply = z.object({
  token: z.string(),
  expiresAt: z.string().optional(),
  source: z.string(),
  credential: z.string().optional(),
});
export type TokenReply = z.infer<typeof TokenReply>;
