import type { JobKind } from '../domain.js';
import type { JobOptions } from './options.js';
import type { TokenSlot } from '../domain.js';
import type { TransferRow } from './schema.js';

/** What the job store takes in and gives out, beside the rows of schema.ts. */

export interface NewTransfer {
  source: string;
  destination: string;
  host: string;
}

/** A job as submitted, without its transfers (see the intake's openJob). */
export interface NewJobHeader {
  kind: JobKind;
  token?: string | undefined;
  /** A copy's token for its source, when it differs from `token`. */
  sourceToken?: string | undefined;
  /** Turns the explicit token into what the token column holds (sealed, plain, or a marker). */
  protectToken?: ((slot: TokenSlot, token: string) => string) | undefined;
  options: JobOptions;
  /** A -r job: the trees the agent lists into its transfers (it starts `listing`). */
  listRoots?: readonly ListRoot[] | undefined;
}

/** One tree of a -r job: a directory, and the directory its files go under (the top name already in it). */
export interface ListRoot {
  source: string;
  destination: string;
}

export interface NewJob extends NewJobHeader {
  transfers: readonly NewTransfer[];
}

/** Two transfers of one job that would write one destination. */
export interface DuplicateDestination {
  index: number;
  earlier: number;
}

/** A queued transfer with what the engine needs from its job. */
export interface RunnableTransfer extends TransferRow {
  kind: JobKind;
  token: string | null;
  sourceToken: string | null;
  options: string;
}

export interface ByteTotals {
  bytesDone: number;
  bytesTotal: number | null;
}
