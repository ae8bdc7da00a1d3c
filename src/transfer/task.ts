import type { ChecksumChoice, JobKind } from '../api/schemas.js';

export interface TransferTask {
  kind: JobKind;
  /** The job it belongs to (explicit tokens are kept per job). */
  jobId?: string;
  source: string;
  destination: string;
  /** The job's bearer token, if it has one. */
  token: string | null;
  checksum: ChecksumChoice;
  /** The code of the previous attempt's failure: a second checksum mismatch is final. */
  previousError?: string | null;
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
}

export interface TransferEngine {
  run(task: TransferTask, ctx: TransferContext): Promise<TransferResult>;
  /** Removes what a cancelled or failed transfer left behind (partial downloads). Never throws. */
  discard(task: TransferTask): Promise<void>;
  close(): Promise<void>;
}

export const PART_SUFFIX = '.petrel-part';
export const partPath = (destination: string): string => destination + PART_SUFFIX;

/** The remote end a task needs a token for, and what it does there. */
export function remoteNeed(task: Pick<TransferTask, 'kind' | 'source' | 'destination'>): { url: URL; operation: 'read' | 'write' | 'stage' } | undefined {
  switch (task.kind) {
    case 'get':
      return { url: new URL(task.source), operation: 'read' };
    case 'put':
      return { url: new URL(task.destination), operation: 'write' };
    case 'prestage':
      return { url: new URL(task.source), operation: 'stage' };
    default:
      return undefined;
  }
}
