/**
 * The words of the job model, once: what kinds of job there are, the states a job or transfer
 * passes through, the checksum and copy-mode choices. The API's zod enums, the database's column
 * enums and the CLI's option choices are all made from these arrays.
 */

export const JOB_KINDS = ['get', 'put', 'copy', 'prestage'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** The kinds that move data from a source to a destination (a prestage only recalls from tape). */
export type TransferKind = Exclude<JobKind, 'prestage'>;

/** What a token may be asked to allow at a storage. */
export const TOKEN_OPERATIONS = ['read', 'write', 'stage'] as const;
export type TokenOperation = (typeof TOKEN_OPERATIONS)[number];

export type Side = 'source' | 'destination';

/** One side of a job: a URL or a local path, and what a token must allow there (nothing: no token). */
export interface SideRule {
  location: 'remote' | 'local';
  operation?: TokenOperation;
}

/** Each kind's two sides: a get reads its source, a put writes its destination, a copy both, a prestage stages (it has no destination). */
export const KIND_SIDES: { readonly [K in JobKind]: { source: SideRule; destination: K extends TransferKind ? SideRule : undefined } } = {
  get: { source: { location: 'remote', operation: 'read' }, destination: { location: 'local' } },
  put: { source: { location: 'local' }, destination: { location: 'remote', operation: 'write' } },
  copy: { source: { location: 'remote', operation: 'read' }, destination: { location: 'remote', operation: 'write' } },
  prestage: { source: { location: 'remote', operation: 'stage' }, destination: undefined },
};

/**
 * A job's or a transfer's state: `queued → running → succeeded | failed | cancelled | skipped` (a
 * transfer), and `waiting`. `listing` is a job's only: a -r job whose trees the agent is still
 * listing (its transfers already listed run meanwhile).
 */
export const RUN_STATES = ['listing', 'queued', 'waiting', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const;
export type RunState = (typeof RUN_STATES)[number];

/** `skipped`: the destination already held the same file (--skip-existing, --sync); nothing was sent. */
export const FINAL_STATES = ['succeeded', 'failed', 'cancelled', 'skipped'] as const satisfies readonly RunState[];
export type FinalState = (typeof FINAL_STATES)[number];
export const isFinal = (s: RunState): s is FinalState => (FINAL_STATES as readonly RunState[]).includes(s);

/** The checksum algorithms computed while streaming. */
export const CHECKSUM_ALGORITHMS = ['adler32', 'md5', 'crc32c'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
/** What a job may ask for: an algorithm, or none. */
export const CHECKSUM_CHOICES = [...CHECKSUM_ALGORITHMS, 'none'] as const;
export type ChecksumChoice = (typeof CHECKSUM_CHOICES)[number];
export const DEFAULT_CHECKSUM: ChecksumChoice = 'adler32';

/** A copy: COPY to the destination, which pulls, or to the source, which pushes. */
export const COPY_MODES = ['pull', 'push'] as const;
export type CopyMode = (typeof COPY_MODES)[number];

/** Page sizes when none is asked for: jobs in a list, transfers in a job's detail. */
export const DEFAULT_JOB_PAGE = 50;
export const DEFAULT_TRANSFER_PAGE = 100;

/** The most transfers one job may hold. */
export const MAX_TRANSFERS = 1_000_000;

/** Where a job keeps its explicit tokens: one for the side that writes (or the only side), one for a copy's source. */
export type TokenColumn = 'token' | 'sourceToken';
export interface TokenSlot {
  jobId: string;
  column: TokenColumn;
}
