import type { SubmitJobHeader } from '../api/index.js';
import { KIND_SIDES, type ChecksumChoice, type CopyMode, type JobKind } from '../domain.js';
import type { TransferTask } from '../transfer/index.js';

/** What a job asks of all its transfers, stored as JSON on its row. */
export interface JobOptions {
  checksum: ChecksumChoice;
  /** Copies: COPY to the destination (pull) or to the source (push). */
  copyMode?: CopyMode;
  /** Copies: replace an existing destination. */
  overwrite?: boolean;
  /** Copies: stream through the agent when COPY is refused. */
  fallback?: 'streamed';
  /** Follow a redirect from https to plain http (the token never goes along). */
  allowInsecureRedirect?: boolean;
  /** Skip a destination that already holds the same file (--skip-existing); `sync` also replaces one that differs. */
  skipExisting?: boolean;
  sync?: boolean;
  /** Gets and copies: recall each source from tape first (--stage). */
  stage?: boolean;
  /** Tape recalls: how long the storage should keep the recalled file on disk (ISO 8601). */
  diskLifetime?: string;
  /** A -r put: follow symbolic links in the local tree. */
  followSymlinks?: boolean;
  /** Federation reads: caches to try first; a last `+` adds the director's. */
  caches?: string[];
}

/** The options a submission sets, and only those (a job row stores no `false` or empty keys). */
export function jobOptionsOf(header: Pick<SubmitJobHeader, 'checksum' | 'copyMode' | 'overwrite' | 'fallback' | 'allowInsecureRedirect' | 'stage' | 'diskLifetime' | 'skipExisting' | 'sync' | 'followSymlinks' | 'caches'>): JobOptions {
  return {
    checksum: header.checksum,
    ...(header.copyMode ? { copyMode: header.copyMode } : {}),
    ...(header.overwrite ? { overwrite: true } : {}),
    ...(header.fallback ? { fallback: header.fallback } : {}),
    ...(header.allowInsecureRedirect ? { allowInsecureRedirect: true } : {}),
    ...(header.skipExisting || header.sync ? { skipExisting: true } : {}),
    ...(header.sync ? { sync: true } : {}),
    ...(header.stage ? { stage: true } : {}),
    ...(header.diskLifetime ? { diskLifetime: header.diskLifetime } : {}),
    ...(header.followSymlinks ? { followSymlinks: true } : {}),
    ...(header.caches?.length ? { caches: header.caches } : {}),
  };
}

export function parseJobOptions(json: string): JobOptions {
  const raw = JSON.parse(json) as Partial<JobOptions>;
  return jobOptionsOf({ ...raw, checksum: raw.checksum ?? 'adler32' });
}

/** The part of a transfer task that comes from its job's options. */
export function taskOptionsOf(options: JobOptions): Pick<TransferTask, 'checksum' | 'copyMode' | 'overwrite' | 'fallback' | 'allowInsecureRedirect' | 'skipExisting' | 'caches'> {
  const { stage: _stage, diskLifetime: _lifetime, followSymlinks: _follow, sync, ...task } = options;
  // --sync replaces what differs: for a copy, that is an overwrite.
  return sync ? { ...task, overwrite: true } : task;
}

/** Whether a job's files come from tape first: a kind that stages (prestage), or --stage. */
export function needsStage(kind: JobKind, options: JobOptions): boolean {
  return KIND_SIDES[kind].source.operation === 'stage' || Boolean(options.stage);
}
