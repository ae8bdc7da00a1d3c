import type { Db } from './database.js';
import { createIntake } from './intake.js';
import { createListings } from './listings.js';
import { createQueue } from './queue.js';
import { createReads } from './reads.js';
import { prepareStatements } from './statements.js';

export type { ByteTotals, DuplicateDestination, ListRoot, NewJob, NewJobHeader, NewTransfer, RunnableTransfer } from './records.js';
export { byteTotalsOf, countsOf } from './reads.js';

/**
 * Every read and write of jobs and transfers: the database is the only state that survives a
 * restart. Split by what it serves: the intake (jobs coming in, their tokens), the queue (the
 * scheduler's moves, each a move of model.ts) and the reads (the API's views); the raw
 * statements they share are prepared once (statements.ts).
 */
export function createJobStore(db: Db) {
  const st = prepareStatements(db);
  return { ...createIntake(db, st), ...createQueue(db, st), ...createReads(db, st), ...createListings(db, st) };
}

export type JobStore = ReturnType<typeof createJobStore>;
