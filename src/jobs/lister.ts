import type { AgentConfig } from '../config.js';
import { asPetrelError, PetrelError, WAITING_CODES } from '../errors.js';
import type { Logger } from '../log.js';
import {
  locationUnder,
  makeCollection,
  parseLocation,
  propfind,
  walkLocal,
  walkRemote,
  type HttpClient,
  type Location,
  type TransferTask,
} from '../transfer/index.js';
import { backoffDelay } from './backoff.js';
import { JOB_MOVES } from './model.js';
import { parseJobOptions } from './options.js';
import type { JobRow } from './schema.js';
import type { JobStore, ListRoot, NewTransfer } from './store.js';
import { createTransferPreparer } from './validate.js';

export interface ListerDeps {
  store: JobStore;
  /** For listings and MKCOL: requests that move no data. */
  http: HttpClient;
  config: Pick<AgentConfig, 'retry'>;
  logger: Logger;
  /** See SchedulerDeps.tokensFor; without it, the job's tokens as stored. */
  tokensFor?: ((task: TransferTask) => Promise<Pick<TransferTask, 'token' | 'sourceToken'>>) | undefined;
  /** New transfers of `job` are queued (the scheduler wakes, and the stager for a job that stages). */
  onTransfersAdded(job: JobRow): void;
  /** Where a listing or a MKCOL for a URL goes (a federation URL: its origin; src/federation/locate.ts); without it, the URL itself. */
  locate?: ((url: URL, op: 'list' | 'write') => Promise<ServerLocation>) | undefined;
}

/** See src/federation/locate.ts. */
export interface ServerLocation {
  url: URL;
  needsToken: boolean;
  shown(at: URL): URL;
}

const itself = async (url: URL): Promise<ServerLocation> => ({ url, needsToken: true, shown: (at) => at });

/** What a listing has found so far, for the job's view. */
export interface ListingProgress {
  directories: number;
  files: number;
}

interface Listing {
  controller: AbortController;
  progress: ListingProgress;
  done: Promise<void>;
}

/** Transfers stored per transaction while a tree is listed (as the intake does). */
const LISTED_BATCH = 500;

/**
 * Lists the trees of -r jobs in the agent, so that a tree of 100,000 files neither blocks the
 * CLI nor sits in memory: each directory's files are stored as queued transfers as they are
 * read (and run at once), a put's remote directories made (MKCOL) before its files. A listing
 * that needs the user waits for resume(); a transient failure of a directory is retried with
 * backoff; any other ends the listing, and the job fails with the storage's words once the
 * transfers already listed have run. A listing cut off by a stop starts again at the next start
 * (what it stored before is passed over).
 */
export function createLister(deps: ListerDeps) {
  const { store, http, logger } = deps;
  const locate = deps.locate ?? itself;
  const active = new Map<string, Listing>();
  /** Jobs whose listing waits for a credential or the open wallet. */
  const waiting = new Set<string>();
  const listeners = new Set<(jobId: string) => void>();
  const changed = (jobId: string) => {
    for (const l of listeners) l(jobId);
  };

  const retry = (e: unknown, attempt: number): number | undefined => {
    const err = asPetrelError(e);
    if (!err.transient || attempt >= deps.config.retry.attempts) return undefined;
    logger.info('listing will retry', { code: err.code, attempt, reason: err.message });
    return err.retryAfterMs ?? backoffDelay(deps.config.retry, attempt);
  };

  /** The token that lists a get's or copy's source, or makes a put's directories at `url`. */
  async function tokenFor(job: JobRow, root: ListRoot, url?: URL): Promise<string | null> {
    const task: TransferTask = {
      kind: job.kind,
      jobId: job.id,
      source: root.source,
      destination: url?.href ?? root.destination,
      token: job.token,
      sourceToken: job.sourceToken,
      checksum: 'none',
    };
    const tokens = deps.tokensFor ? await deps.tokensFor(task) : { token: job.token, sourceToken: job.sourceToken };
    return (job.kind === 'copy' ? (tokens.sourceToken ?? tokens.token) : tokens.token) ?? null;
  }

  async function listJob(job: JobRow, listing: Listing): Promise<void> {
    const roots = JSON.parse(job.listRoots ?? '[]') as ListRoot[];
    const options = parseJobOptions(job.options);
    const prepare = createTransferPreparer(job.kind, options.copyMode);
    const { signal } = listing.controller;
    let batch: NewTransfer[] = [];
    const flush = () => {
      if (!batch.length) return;
      const added = store.addListed(job.id, batch);
      batch = [];
      if (added) deps.onTransfersAdded(job);
      changed(job.id);
    };
    const add = (source: string, destination: string) => {
      batch.push(prepare({ source, destination }, listing.progress.files++));
      if (batch.length >= LISTED_BATCH) flush();
    };
    for (const root of roots) {
      const dest = parseLocation(root.destination);
      if (job.kind === 'put') {
        await walkLocal(root.source, {
          followSymlinks: Boolean(options.followSymlinks),
          signal,
          onDirectory: async (rel) => {
            flush();
            const url = new URL(`${locationUnder(dest, rel).replace(/\/+$/, '')}/`);
            const at = await locate(url, 'write');
            await makeCollection(http, at.url, await tokenFor(job, root, url), signal);
            listing.progress.directories++;
          },
          onFile: (path, rel) => add(path, locationUnder(dest, rel)),
        });
      } else {
        await listRemote(job, root, dest, listing, add, flush);
      }
      flush();
    }
  }

  async function listRemote(job: JobRow, root: ListRoot, dest: Location, listing: Listing, add: (s: string, d: string) => void, flush: () => void): Promise<void> {
    const { signal } = listing.controller;
    const url = new URL(root.source);
    const at = await locate(url, 'list');
    const token = async () => (at.needsToken ? tokenFor(job, root) : null);
    const [self] = await propfind(http, at.url, await token(), 0, signal);
    if (!self) throw new PetrelError('TRANSFER_NOT_FOUND', `${url.href}: no such directory`, { hint: 'check the path' });
    if (self.type !== 'dir') throw new PetrelError('USAGE', `${url.href} is a file, not a directory`, { hint: 'leave out -r to transfer one file' });
    await walkRemote(http, self.url, {
      token,
      retry,
      signal,
      // A federation's files are stored as federation URLs: each is read through a cache.
      onEntry: (e) => {
        if (e.type === 'file') add(at.shown(e.url).href, locationUnder(dest, e.rel));
      },
      onDirectory: () => {
        listing.progress.directories++;
        flush();
      },
    });
  }

  function list(jobId: string): void {
    if (active.has(jobId)) return;
    const job = store.getJob(jobId);
    if (!job?.listRoots || job.state !== JOB_MOVES.relist.to) return;
    waiting.delete(jobId);
    const listing: Listing = { controller: new AbortController(), progress: { directories: 0, files: 0 }, done: Promise.resolve() };
    active.set(jobId, listing);
    logger.info('listing started', { job: jobId });
    listing.done = listJob(job, listing)
      .then(() => {
        const row = store.getJob(jobId);
        if (row && row.transferCount === 0) {
          const roots = (JSON.parse(job.listRoots ?? '[]') as ListRoot[]).map((r) => r.source).join(', ');
          throw new PetrelError('TRANSFER_NOT_FOUND', `no files under ${roots}`, { hint: 'check the path: the trees are empty' });
        }
        store.listed(jobId);
        logger.info('listing done', { job: jobId, files: listing.progress.files, directories: listing.progress.directories });
      })
      .catch((e: unknown) => {
        // Cancelled or stopping: the job's cancel, or the next start, decides.
        if (listing.controller.signal.aborted) return;
        const err = asPetrelError(e);
        if (WAITING_CODES.has(err.code)) {
          logger.info('listing waits', { job: jobId, code: err.code, reason: err.message });
          store.listingWaits(jobId, err.message, err.hint);
          waiting.add(jobId);
          return;
        }
        if (err.code === 'INTERNAL') logger.error('listing crashed', { job: jobId, error: e });
        else logger.info('listing failed', { job: jobId, code: err.code, reason: err.message });
        store.listed(jobId, err.toJSON());
      })
      .finally(() => {
        active.delete(jobId);
        if (!listing.controller.signal.aborted) store.finishJobIfDone(jobId);
        changed(jobId);
      });
  }

  async function abort(jobId: string): Promise<void> {
    const listing = active.get(jobId);
    waiting.delete(jobId);
    if (!listing) return;
    listing.controller.abort();
    await listing.done;
  }

  return {
    /** Lists a -r job's trees (one just submitted, or retried). */
    list,
    /** At start: the listings a stop cut off begin again. */
    start(): void {
      for (const id of store.listingJobIds()) list(id);
    },
    /** A credential appeared or the wallet opened: waiting listings begin again. */
    resume(): void {
      for (const id of [...waiting]) list(id);
    },
    progress: (jobId: string): ListingProgress | undefined => {
      const p = active.get(jobId)?.progress;
      return p ? { ...p } : undefined;
    },
    /** Stops a job's listing before it is cancelled. */
    cancel: abort,
    async stop(): Promise<void> {
      await Promise.all([...active.keys()].map(abort));
    },
    onJobChanged(listener: (jobId: string) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export type Lister = ReturnType<typeof createLister>;
