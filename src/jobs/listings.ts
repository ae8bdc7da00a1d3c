import { MAX_TRANSFERS } from '../domain.js';
import { PetrelError, type ErrorInfo } from '../errors.js';
import type { Db } from './database.js';
import { among, INITIAL_STATE, JOB_MOVES, state, TRANSFER_MOVES } from './model.js';
import type { ListRoot, NewTransfer } from './records.js';
import type { JobRow } from './schema.js';
import type { Statements } from './statements.js';

const J = JOB_MOVES;
const T = TRANSFER_MOVES;

/**
 * The store's side of a -r job: its trees are listed by the agent (lister.ts) into transfers,
 * a batch at a time, while the transfers already listed run. Listing again (after a restart, or
 * `petrel job retry`) meets what it stored before: the same source to the same destination is
 * passed over; another source to a destination already written is an error.
 */
export function createListings(db: Db, st: Statements) {
  const client = db.$client;
  const insert = client.prepare(
    `INSERT INTO transfers (job_id, idx, source, destination, host, state) VALUES (?, ?, ?, ?, ?, ${state(INITIAL_STATE)}) ON CONFLICT (job_id, destination) DO NOTHING`,
  );
  const writerOf = client.prepare('SELECT source FROM transfers WHERE job_id = ? AND destination = ?').pluck();
  const nextIndex = client.prepare('SELECT coalesce(max(idx) + 1, 0) FROM transfers WHERE job_id = ?').pluck();
  // There is no insert trigger (migration 0004): the tallies of what a batch added are written here.
  const tally = client.prepare('UPDATE jobs SET transfer_count = transfer_count + @n, queued_count = queued_count + @n, bytes_unknown = bytes_unknown + @n WHERE id = @id');
  const count = client.prepare('SELECT transfer_count FROM jobs WHERE id = ?').pluck();
  const listingJobs = client.prepare(`SELECT id FROM jobs WHERE state = ${state(J.listed.from[0])} AND receiving = 0`).pluck();
  // Its state becomes its transfers': running, queued, else waiting (none left: queued, and finishJobIfDone ends it).
  const listed = client.prepare(
    `UPDATE jobs SET listed_at = @listedAt, error_code = @code, error_message = @message, error_hint = @hint, waiting_reason = NULL, waiting_hint = NULL,
       state = CASE WHEN running_count > 0 THEN ${state(T.start.to)} WHEN queued_count = 0 AND waiting_count > 0 THEN ${state(T.wait.to)} ELSE ${state(INITIAL_STATE)} END
     WHERE id = @id AND state ${among(J.listed.from)}`,
  );
  const relist = client.prepare(
    `UPDATE jobs SET state = ${state(J.relist.to)}, listed_at = NULL, finished_at = NULL, error_code = NULL, error_message = NULL, error_hint = NULL
     WHERE id = ? AND list_roots IS NOT NULL AND state ${among(J.relist.from)}`,
  );
  const setRoots = client.prepare('UPDATE jobs SET list_roots = ? WHERE id = ? AND receiving = 1');
  const waitListing = client.prepare(`UPDATE jobs SET waiting_reason = @reason, waiting_hint = @hint WHERE id = @id AND state ${among(J.listed.from)}`);

  const addBatch = client.transaction((jobId: string, batch: readonly NewTransfer[]): number => {
    let idx = nextIndex.get(jobId) as number;
    let added = 0;
    for (const t of batch) {
      if (insert.run(jobId, idx, t.source, t.destination, t.host).changes) {
        idx++;
        added++;
        continue;
      }
      const earlier = writerOf.get(jobId, t.destination) as string;
      if (earlier !== t.source) {
        throw new PetrelError('API_BAD_REQUEST', `${earlier} and ${t.source} would both be written to ${t.destination}`, { hint: 'give the trees separate destinations' });
      }
    }
    if (added) {
      if ((count.get(jobId) as number) + added > MAX_TRANSFERS) {
        throw new PetrelError('API_BAD_REQUEST', `the trees hold more than ${MAX_TRANSFERS.toLocaleString('en')} files, the most one job may hold`, { hint: 'split them into several jobs' });
      }
      tally.run({ id: jobId, n: added });
    }
    return added;
  });

  return {
    /** The -r jobs whose trees are being listed (at start: the listings a stop cut off). */
    listingJobIds: (): string[] => listingJobs.all() as string[],

    /** Stores a listed batch as queued transfers of the job; returns how many are new. Throws, storing none, on a destination written twice. */
    addListed: (jobId: string, batch: readonly NewTransfer[]): number => addBatch(jobId, batch),

    /** Its trees are all listed, or the listing failed with `error` (the job fails with it once its transfers end). */
    listed(jobId: string, error?: ErrorInfo, now = Date.now()): JobRow | undefined {
      listed.run({ id: jobId, listedAt: error ? null : now, code: error?.code ?? null, message: error?.message ?? null, hint: error?.hint ?? null });
      return st.getJob.get(jobId) as JobRow | undefined;
    },

    /** The listing waits for the user (a credential, the open wallet): the job shows why. */
    listingWaits(jobId: string, reason: string, hint: string | undefined): void {
      waitListing.run({ id: jobId, reason, hint: hint ?? null });
    },

    /** A -r job's trees, written as it is committed. */
    setListRoots(jobId: string, roots: readonly ListRoot[]): void {
      setRoots.run(JSON.stringify(roots), jobId);
    },

    /** Lists the trees of a -r job again (`petrel job retry` of one whose listing did not end). */
    relist: (jobId: string): boolean => relist.run(jobId).changes === 1,
  };
}
