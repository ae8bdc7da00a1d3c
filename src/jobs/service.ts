import type { JobDetail, JobDetailQuery, JobEvent, JobList, JobView, ListJobsQuery, SubmitJobHeader, TransferSpec } from '../api/index.js';
import { DEFAULT_JOB_PAGE, DEFAULT_TRANSFER_PAGE, isFinal, MAX_TRANSFERS, type TokenSlot } from '../domain.js';
import type { AgentConfig } from '../config.js';
import { PetrelError } from '../errors.js';
import type { Logger } from '../log.js';
import { caFileFromEnv } from '../config.js';
import { createTapeClient } from '../tape/index.js';
import { createHttpClient, type TransferEngine } from '../transfer/index.js';
import { openDatabase, type OpenDatabase } from './database.js';
import { jobNotFound } from './errors.js';
import { createJobEvents } from './events.js';
import { createLister, type ListerDeps } from './lister.js';
import { isRunning, isUnlisted, JOB_MOVES } from './model.js';
import { jobOptionsOf } from './options.js';
import { createRecalls, type HeldTransfer } from './recalls.js';
import { createStager, type StagerDeps, type StageToken } from './stager.js';
import { createScheduler, type SchedulerDeps } from './scheduler.js';
import { createJobStore } from './store.js';
import { createTransferPreparer, duplicateDestination } from './validate.js';
import type { ListRoot, NewTransfer } from './store.js';
import { jobView, transferView } from './views.js';

export interface JobServiceDeps {
  /** A file path, or `:memory:` for a private queue (in-process transfers). */
  database: string;
  engine: TransferEngine;
  config: AgentConfig;
  logger: Logger;
  runId: string;
  /** See SchedulerDeps.tokensFor. */
  tokensFor?: SchedulerDeps['tokensFor'];
  /** The token and credential for recalling a transfer's source from tape; without it, the job's token as stored. */
  stageTokenFor?: StagerDeps['stageTokenFor'];
  /** How an explicit token is kept in the database (src/auth/job-tokens.ts). */
  protectToken?: (slot: TokenSlot, token: string) => string;
  /** See ListerDeps.locate: where listings of federation URLs go. */
  locate?: ListerDeps['locate'];
}

/** Without a token service: the job's token as stored (an in-memory queue keeps it plain). */
async function storedStageToken(t: HeldTransfer): Promise<StageToken> {
  return { token: t.token };
}

/**
 * Transfers stored per transaction while a job comes in: small enough that they die young in the
 * agent's heap (a 1 MiB young generation), large enough that commits cost little.
 */
const INTAKE_BATCH = 500;

/** The most trees one -r job may name (they are held until the job is committed). */
const MAX_TREES = 10_000;

/** The job queue as the socket API sees it: submit, look, cancel, retry, follow. */
export function createJobService(deps: JobServiceDeps) {
  const database: OpenDatabase = openDatabase(deps.database, { exclusive: deps.database !== ':memory:' });
  const store = createJobStore(database.db);
  const incomplete = store.dropIncompleteJobs();
  if (incomplete) deps.logger.info('submissions cut off by the last stop removed', { jobs: incomplete });
  const events = createJobEvents();

  const scheduler = createScheduler({
    store,
    engine: deps.engine,
    events,
    config: deps.config,
    logger: deps.logger,
    runId: deps.runId,
    transferView,
    ...(deps.tokensFor ? { tokensFor: deps.tokensFor } : {}),
  });

  /** Set at stop: submissions are refused and job events no longer go out. */
  let stopping = false;
  /** For requests that move no data: the tape API's, listings, MKCOL. */
  const controlHttp = createHttpClient({ caFile: caFileFromEnv(), connectTimeoutMs: deps.config.connectTimeoutMs, idleTimeoutMs: deps.config.idleTimeoutMs });
  const recalls = createRecalls(database.db);
  const stager = createStager({
    store,
    recalls,
    tape: createTapeClient({ http: controlHttp, discoveryTtlMs: deps.config.tape.discoveryTtlMs, maxFilesPerRequest: deps.config.tape.batchSize }),
    config: deps.config,
    logger: deps.logger,
    stageTokenFor: deps.stageTokenFor ?? storedStageToken,
  });
  const lister = createLister({
    store,
    http: controlHttp,
    config: deps.config,
    logger: deps.logger,
    tokensFor: deps.tokensFor,
    onTransfersAdded: (job) => (job.needsStage ? wake() : scheduler.wake()),
    locate: deps.locate,
  });
  stager.onFilesOnDisk(() => scheduler.wake());
  scheduler.onTransferDone((row) => stager.moved(row));
  /** New or re-queued work: the scheduler's, and the stager's when it must come from tape first. */
  const wake = () => {
    scheduler.wake();
    void stager.wake();
  };

  const view = (id: string): JobView => {
    const row = store.getJob(id);
    if (!row) throw jobNotFound(id);
    if (isRunning(row.state) || row.state === JOB_MOVES.relist.to) scheduler.flushProgress();
    return jobView(row, store.counts(id), store.byteTotals(id), scheduler.liveRate(id), row.needsStage ? recalls.jobRecalls(id) : undefined, lister.progress(id));
  };

  // Job views are coalesced (a job of thousands of small files changes hundreds of times a
  // second); the final one goes out at once.
  const JOB_EVENT_EVERY_MS = 250;
  const dirty = new Set<string>();
  let emitTimer: NodeJS.Timeout | undefined;
  const emitJob = (jobId: string) => {
    if (events.has(jobId)) events.emit(jobId, { type: 'job', job: view(jobId) });
  };
  const onJobChanged = (jobId: string, finished?: boolean) => {
    if (stopping || !events.has(jobId)) return;
    if (finished ?? store.getJob(jobId)?.finishedAt != null) {
      dirty.delete(jobId);
      emitJob(jobId);
      return;
    }
    dirty.add(jobId);
    emitTimer ??= setTimeout(() => {
      emitTimer = undefined;
      for (const id of dirty) emitJob(id);
      dirty.clear();
    }, JOB_EVENT_EVERY_MS);
  };
  scheduler.onJobChanged(onJobChanged);
  stager.onJobChanged(onJobChanged);
  lister.onJobChanged(onJobChanged);

  /** The submissions coming in now, each by the call that gives it up. */
  const receiving = new Set<() => void>();
  const shuttingDown = () => new PetrelError('AGENT_SHUTTING_DOWN', 'the agent is stopping; the job was not taken', { hint: 'submit it again once the agent runs (`petrel agent start`)' });

  /**
   * A job whose transfers arrive one at a time (the NDJSON form of POST /v1/jobs), each checked as
   * it comes and stored a batch at a time, so the agent never holds a whole job of 100,000. The
   * job joins the queue at `commit`; until then nobody sees it, and a failed or abandoned
   * submission leaves nothing behind.
   */
  function begin(header: SubmitJobHeader) {
    if (stopping) throw shuttingDown();
    const prepare = createTransferPreparer(header.kind, header.copyMode);
    /** A -r job's trees: few (the command line's), kept until commit; the agent lists them. */
    const roots: ListRoot[] | undefined = header.recursive ? [] : undefined;
    if (roots && header.kind === 'prestage') throw new PetrelError('API_BAD_REQUEST', 'a prestage job takes files, not trees (recursive)');
    const id = store.openJob({
      kind: header.kind,
      token: header.token,
      sourceToken: header.sourceToken,
      protectToken: deps.protectToken,
      options: jobOptionsOf(header),
      listRoots: roots,
    });
    let count = 0;
    let batch: NewTransfer[] = [];
    let open = true;
    const end = (): void => {
      open = false;
      receiving.delete(abandon);
    };
    const abandon = (): void => {
      if (!open) return;
      end();
      store.dropJob(id);
    };
    receiving.add(abandon);
    const flush = (): void => {
      const first = count - batch.length;
      const duplicate = store.addTransfers(id, first, batch);
      if (duplicate) throw duplicateDestination(duplicate.index, duplicate.earlier, (batch[duplicate.index - first] as NewTransfer).destination);
      batch = [];
    };
    /** Whatever fails gives the job up: it is refused whole. */
    const orAbandon = <T>(fn: () => T): T => {
      if (!open) throw stopping ? shuttingDown() : new PetrelError('INTERNAL', 'the submission has already ended');
      try {
        return fn();
      } catch (e) {
        abandon();
        throw e;
      }
    };
    return {
      add: (spec: TransferSpec): void =>
        orAbandon(() => {
          if (count >= (roots ? MAX_TREES : MAX_TRANSFERS)) throw new PetrelError('API_BAD_REQUEST', `a job holds at most ${(roots ? MAX_TREES : MAX_TRANSFERS).toLocaleString('en')} ${roots ? 'trees' : 'transfers'}`, { hint: 'split it into several jobs' });
          const prepared = prepare(spec, count++);
          if (roots) return void roots.push({ source: prepared.source, destination: prepared.destination });
          batch.push(prepared);
          if (batch.length >= INTAKE_BATCH) flush();
        }),
      commit: (): JobView =>
        orAbandon(() => {
          if (!count) throw new PetrelError('API_BAD_REQUEST', 'the job has no transfers', { hint: 'give at least one source and destination' });
          if (roots) store.setListRoots(id, roots);
          else flush();
          const row = store.completeJob(id, roots ? 0 : count);
          end();
          deps.logger.info('job submitted', { job: row.id, kind: row.kind, ...(roots ? { trees: roots.length } : { transfers: count }) });
          if (roots) lister.list(row.id);
          else wake();
          return view(row.id);
        }),
      /** Gives the job up unless it was committed (a broken or refused request): call it in `finally`. */
      abandon,
    };
  }

  return {
    start(): void {
      scheduler.start();
      stager.start();
      lister.start();
    },

    submit(req: SubmitJobHeader & { transfers: readonly TransferSpec[] }): JobView {
      const job = begin(req);
      try {
        req.transfers.forEach((t) => job.add(t));
        return job.commit();
      } finally {
        job.abandon();
      }
    },

    begin,

    view,

    /** A page of jobs, newest first (the route has validated the query; in-process callers pass numbers). */
    list(q: ListJobsQuery): JobList {
      const page = store.listJobs({ state: q.state, limit: q.limit ?? DEFAULT_JOB_PAGE, cursor: q.cursor });
      return { jobs: page.rows.map((r) => view(r.id)), ...(page.next ? { next: page.next } : {}) };
    },

    detail(id: string, q: JobDetailQuery = {}): JobDetail {
      const job = view(id);
      if (q.transferCursor !== undefined && !/^\d{1,10}$/.test(q.transferCursor)) {
        throw new PetrelError('API_BAD_REQUEST', 'transferCursor must be the value of a previous nextTransfers', { hint: 'leave it out for the first page' });
      }
      const afterIndex = q.transferCursor === undefined ? undefined : Number(q.transferCursor);
      const page = store.listTransfers(id, { state: q.transferState, limit: q.transferLimit ?? DEFAULT_TRANSFER_PAGE, afterIndex });
      return {
        ...job,
        transfers: page.rows.map((r) => transferView(r, scheduler.live(r.id))),
        ...(page.nextIndex !== undefined ? { nextTransfers: String(page.nextIndex) } : {}),
      };
    },

    async cancel(id: string): Promise<JobView> {
      if (!store.getJob(id)) throw jobNotFound(id);
      // Its listing stops first (no more transfers), and its recalls are withdrawn at the
      // storage while the files are still held.
      await lister.cancel(id);
      await stager.cancel(id);
      await scheduler.cancel(id);
      return view(id);
    },

    retry(id: string): JobView {
      const row = store.getJob(id);
      if (!row) throw jobNotFound(id);
      if (row.finishedAt === null) {
        throw new PetrelError('JOB_NOT_FINISHED', `job ${id} is still ${row.state}`, { hint: `wait for it with \`petrel job wait ${id}\`, or cancel it first` });
      }
      const n = store.retryJob(id);
      // A -r job whose listing failed or was cancelled lists its trees again (what it listed before is passed over).
      const relist = isUnlisted(row) && store.relist(id);
      if (n === 0 && !relist) throw new PetrelError('JOB_NOT_FINISHED', `job ${id} has no failed or cancelled transfers to retry`);
      deps.logger.info('job re-queued', { job: id, transfers: n, ...(relist ? { relisted: true } : {}) });
      wake();
      if (relist) lister.list(id);
      return view(id);
    },

    /** Follows a job: its current view, then every event, until it has finished or `signal` aborts. */
    async *follow(id: string, signal?: AbortSignal, opts: { transfers: boolean } = { transfers: true }): AsyncGenerator<JobEvent> {
      const queue: JobEvent[] = [{ type: 'job', job: view(id) }];
      let wake: (() => void) | undefined;
      const unsubscribe = events.subscribe(
        id,
        (ev) => {
          queue.push(ev);
          wake?.();
        },
        opts,
      );
      const onAbort = () => wake?.();
      signal?.addEventListener('abort', onAbort);
      try {
        while (!signal?.aborted) {
          const ev = queue.shift();
          if (!ev) {
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
            continue;
          }
          yield ev;
          if (ev.type === 'job' && isFinal(ev.job.state) && ev.job.finishedAt) return;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        unsubscribe();
      }
    },

    queueCounts: () => store.queueCounts(),

    /** A credential appeared or the wallet opened: waiting transfers try again. */
    resumeWaiting: (): number => {
      const n = scheduler.resumeWaiting();
      void stager.wake();
      lister.resume();
      return n;
    },

    /** Polls the tape recalls that are due now. */
    pollRecalls: (): Promise<void> => stager.pollNow(),

    resealTokens: (reseal: (slot: TokenSlot, value: string) => string | undefined): number => store.resealTokens(reseal),

    async stop(): Promise<void> {
      // Submissions still coming in are refused and taken back while the database is open.
      stopping = true;
      for (const abandon of [...receiving]) abandon();
      await lister.stop();
      await stager.stop();
      await scheduler.stop();
      clearTimeout(emitTimer);
      await controlHttp.close();
      database.close();
    },
  };
}

export type JobService = ReturnType<typeof createJobService>;
