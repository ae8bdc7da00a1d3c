import type { ChecksumChoice, CopyMode, JobKind } from '../domain.js';

export interface TransferTask {
  kind: JobKind;
  /** The job it belongs to (explicit tokens are kept per job). */
  jobId?: string;
  source: string;
  destination: string;
  /** The job's bearer token, if it has one; for a copy, the destination's (write). */
  token: string | null;
  /** A copy's token for its source (read). */
  sourceToken?: string | null;
  /** A copy: COPY to the destination (pull, default) or to the source (push). */
  copyMode?: CopyMode;
  /** A copy the active storage refuses (405/501) streams through this process instead. */
  fallback?: 'streamed';
  /** Follow a redirect from https to plain http (the token is never sent over it). */
  allowInsecureRedirect?: boolean;
  /** A destination that already holds the same file is left as it is (the result says `skipped`). */
  skipExisting?: boolean;
  /** A copy may replace an existing destination. */
  overwrite?: boolean;
  /** Bytes an earlier attempt recorded: a copy that wrote some owns the leftover at its destination. */
  previousBytes?: number;
  /** A copy already created the destination's parent directories. */
  parentsMade?: boolean;
  /** A retried copy already removed the empty file an earlier attempt left at the destination. */
  leftoverRemoved?: boolean;
  checksum: ChecksumChoice;
  /** The code of the previous attempt's failure: a second checksum mismatch is final. */
  previousError?: string | null;
  /** Sent with the data requests (a federation's `X-Pelican-JobId`). */
  headers?: Record<string, string> | undefined;
  /** Federation reads: caches to try first (`--cache`); a last entry `+` adds the director's after them. */
  caches?: string[] | undefined;
}

export interface TransferProgress {
  bytesDone: number;
  bytesTotal: number | null;
}

export interface TransferContext {
  signal: AbortSignal;
  onProgress(p: TransferProgress): void;
}

export interface TransferResult extends TransferProgress {
  /** The checksum computed while streaming; `verified` when the server's matched it. */
  checksum?: { algorithm: string; value: string; verified: boolean };
  /** Nothing was sent: the destination already held the same file. */
  skipped?: boolean;
  /** A federation's transfer: the server that served it (`https://host:port`). */
  servedBy?: string;
  /** A federation's transfer: the servers tried before, and why each was left. */
  serverAttempts?: ServerAttempt[];
}

export interface ServerAttempt {
  server: string;
  error: string;
}

export interface TransferEngine {
  run(task: TransferTask, ctx: TransferContext): Promise<TransferResult>;
  /** Removes what a cancelled or failed transfer left behind (partial downloads). Never throws. */
  discard(task: TransferTask): Promise<void>;
  close(): Promise<void>;
}

export const PART_SUFFIX = '.petrel-part';
export const partPath = (destination: string): string => destination + PART_SUFFIX;

