import type { JobEvent, TransferView } from '../api/index.js';
import type { AgentConfig } from '../config.js';
import { asPetrelError, PetrelError, WAITING_CODES, type ErrorInfo } from '../errors.js';
import type { Logger } from '../log.js';
import type { TransferEngine, TransferProgress, TransferTask } from '../transfer/index.js';
import { backoffDelay } from './backoff.js';
import { jobNotFound } from './errors.js';
import type { JobEvents } from './events.js';
import { createHostHealth } from './host-health.js';
import { createRateMeter, type RateMeter } from './rate.js';
import type { TransferOutcome } from './model.js';
import type { TransferRow } from './schema.js';
import { parseJobOptions, taskOptionsOf } from './options.js';
import type { JobStore, RunnableTransfer } from './store.js';

export interface LiveProgress extends TransferProgress {
  rate: number;
}

interface Running {
  row: RunnableTransfer;
  task: TransferTask;
  controller: AbortController;
  progress: TransferProgress;
  savedBytes: number;
  meter: RateMeter;
  /** Why we aborted it, if we did. */
  stopReason?: 'cancel' | 'shutdown';
  settled: Promise<void>;
}

/** A transfer that has ended and whose end is not yet written: what it achieved, if it succeeded. */
interface Ended {
  row: RunnableTransfer;
  succeeded: TransferOutcome | undefined;
}

export interface SchedulerDeps {
  store: JobStore;
  engine: TransferEngine;
  events: JobEvents;
  config: AgentConfig;
  logger: Logger;
  /** Names this process run: rows a crashed run left `running` are found by a different id. */
  runId: string;
  /** Builds the view sent with a transfer's state-change event. */
  transferView(row: TransferRow, live?: LiveProgress): TransferView;
  /**
   * The bearer tokens for a task (a copy has one per side), given the job's stored tokens: the agent unseals explicit tokens
   * and asks the token broker for the rest. Throws a waiting error when the user must act.
   * Without it, the job's token is used as stored.
   */
  tokensFor?(task: TransferTask): Promise<Pick<TransferTask, 'token' | 'sourceToken'>>;
  random?: () => number;
}

/**
 * Hears that a job's state, counts or waiting reason may have changed; `finished` says whether the
 * job has ended, when the caller knows (else the listener looks).
 */
export type JobListener = (jobId: string, finished?: boolean) => void;

const toError = (e: PetrelError): ErrorInfo => e.toJSON();

/** Failures that carry the storage's own answer: it is there, whatever it said. */
const ANSWERED_CODES = new Set(['TRANSFER_DENIED', 'TRANSFER_NOT_FOUND', 'TRANSFER_REFUSED', 'TRANSFER_SERVER_ERROR', 'TRANSFER_THROTTLED', 'TRANSFER_CHECKSUM_MISMATCH', 'TRANSFER_PROTOCOL']);

const clock = (at: number) => new Date(at).toTimeString().slice(0, 5);

/**
 * Runs queued transfers within the global and per-host limits, retries transient failures with
 * backoff, and writes every state change through the store so a restart resumes from the database.
 */
export function createScheduler(deps: SchedulerDeps) {
  const { store, engine, events, config, logger } = deps;
  const running = new Map<number, Running>();
  const perHost = new Map<string, number>();
  let wakeTimer: NodeJS.Timeout | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  /** Transfers ended and not yet written (recordEnds), and the turn of the loop that writes them. */
  const ended: Ended[] = [];
  let endTimer: NodeJS.Immediate | undefined;
  let stopping = false;
  /** Running transfers of hosts given up on (hostDownFailAfterMs): no answer for them either is final. */
  const gaveUp = new Map<number, PetrelError>();
  const health = createHostHealth({
    maxWindow: config.perHostConcurrency,
    downAfterFailures: config.hostDownAfterFailures,
    probeFirstMs: config.hostProbeFirstMs,
    probeMaxMs: config.hostProbeMaxMs,
  });

  /** Who hears that a job changed (the service, which builds and coalesces its views). */
  const jobListeners = new Set<JobListener>();
  /** Who hears that a transfer succeeded (the stager releases what it recalled). */
  const doneListeners = new Set<(row: RunnableTransfer) => void>();
  function jobChanged(jobId: string, finished?: boolean): void {
    for (const listener of jobListeners) listener(jobId, finished);
  }

  function emit(jobId: string, event: JobEvent): void {
    if (events.has(jobId)) events.emit(jobId, event);
  }

  function emitTransfer(jobId: string, transferId: number, live?: LiveProgress): void {
    if (!events.wantsTransfers(jobId)) return;
    const row = store.getTransfer(transferId);
    if (row) emit(jobId, { type: 'transfer', jobId, transfer: deps.transferView(row, live) });
  }

  /**
   * Down hosts: what is queued for them waits (with the reason), a probe goes back to the queue
   * when one is due, and what has waited past hostDownFailAfterMs fails.
   */
  function tendDownHosts(now: number): void {
    for (const { host, since } of health.downHosts()) {
      const hint = `petrel tries it again by itself, and fails what still waits after ${Math.round(config.hostDownFailAfterMs / 60_000)} min (hostDownFailAfterMs)`;
      for (const jobId of store.parkHost(host, `storage ${host} not answering since ${clock(since)}`, hint)) jobChanged(jobId);
      if (now - since >= config.hostDownFailAfterMs) {
        // What waits fails, and the host is forgotten: a later job tries it afresh. A probe
        // still running fails the same way if it gets no answer either.
        health.forget(host);
        const err = new PetrelError('TRANSFER_TIMEOUT', `storage ${host} has not answered since ${clock(since)} (${Math.round((now - since) / 60_000)} min): gave up`, {
          hint: 'run `petrel job retry <id>` once it answers again',
        });
        for (const [id, entry] of running) if (entry.row.host === host) gaveUp.set(id, err);
        const changed = store.failHost(host, toError(err), now);
        if (changed.length) logger.warn('gave up on a host that does not answer', { host, since: new Date(since).toISOString(), jobs: changed.length });
        for (const jobId of changed) {
          store.finishJobIfDone(jobId);
          jobChanged(jobId);
        }
        continue;
      }
      if (health.window(host, now) > 0 && !perHost.get(host)) store.unparkOne(host);
    }
  }

  function pump(): void {
    if (stopping) return;
    clearTimeout(wakeTimer);
    wakeTimer = undefined;
    const now = Date.now();
    tendDownHosts(now);
    const free = config.concurrency - running.size;
    if (free > 0) {
      const room = (host: string) => Math.min(config.perHostConcurrency, health.window(host, now)) - (perHost.get(host) ?? 0);
      for (const row of store.nextRunnable({ now, limit: free, room })) start(row);
    }
    // Only backoffs and probes need a timer: a transfer due now but held by a limit starts when one ends.
    const backoff = running.size < config.concurrency ? store.nextDueAt(now) : undefined;
    const probe = health.nextProbeAt();
    const due = backoff === undefined ? probe : probe === undefined ? backoff : Math.min(backoff, probe);
    if (due !== undefined) {
      // Not unref'd: an in-process run waiting out a retry backoff must stay alive.
      wakeTimer = setTimeout(pump, Math.max(10, due - Date.now()));
    }
  }

  function start(row: RunnableTransfer): void {
    store.markRunning(row, deps.runId);
    const options = parseJobOptions(row.options);
    const task: TransferTask = {
      kind: row.kind,
      jobId: row.jobId,
      source: row.source,
      destination: row.destination,
      token: row.token,
      sourceToken: row.sourceToken,
      ...taskOptionsOf(options),
      previousError: row.errorCode,
      previousBytes: row.bytesDone,
    };
    const controller = new AbortController();
    const entry: Running = {
      row: { ...row, attempts: row.attempts + 1 },
      task,
      controller,
      progress: { bytesDone: row.bytesDone, bytesTotal: row.bytesTotal },
      savedBytes: row.bytesDone,
      meter: createRateMeter(),
      settled: Promise.resolve(),
    };
    running.set(row.id, entry);
    perHost.set(row.host, (perHost.get(row.host) ?? 0) + 1);
    health.started(row.host, row.id);
    logger.debug('transfer started', { job: row.jobId, transfer: row.idx, attempt: entry.row.attempts });
    jobChanged(row.jobId, false);
    emitTransfer(row.jobId, row.id, live(entry));

    // Through a promise even if tokensFor throws at once: a throw here would escape the scheduler.
    const withToken = Promise.resolve().then(async () => (deps.tokensFor ? { ...task, ...(await deps.tokensFor(task)) } : task));
    let succeeded: TransferOutcome | undefined;
    entry.settled = withToken
      .then((ready) => engine.run(ready, {
        signal: controller.signal,
        onProgress: (p) => {
          entry.progress = p;
          entry.meter.record(p.bytesDone);
        },
      }))
      .then(
        (result) => {
          gaveUp.delete(row.id);
          hostAnswered(row.host);
          // Written by recordEnds, in the commit that also settles the job and starts the next transfer.
          succeeded = {
            move: result.skipped ? 'skip' : 'succeed',
            bytesDone: result.bytesDone,
            bytesTotal: result.bytesTotal,
            checksum: result.checksum,
            servedBy: result.servedBy,
            serverAttempts: result.serverAttempts,
          };
        },
        (e: unknown) => settleFailure(entry, e),
      )
      .catch((e: unknown) => logger.error('recording a transfer outcome failed', { job: row.jobId, transfer: row.idx, error: e }))
      .finally(() => {
        running.delete(row.id);
        const n = (perHost.get(row.host) ?? 1) - 1;
        if (n > 0) perHost.set(row.host, n);
        else perHost.delete(row.host);
        ended.push({ row, succeeded });
        endTimer ??= setImmediate(recordEnds);
      });
  }

  /**
   * Writes the ends of the transfers that ended in this turn of the event loop in one commit, with
   * their jobs' states and the transfers started in their place (with 8 small files at once, several
   * end together). Events go out after it, so they say what the store holds. A crash before it
   * loses no file: a transfer not written as ended runs again at the next start.
   */
  function recordEnds(): void {
    clearImmediate(endTimer);
    endTimer = undefined;
    const batch = ended.splice(0);
    if (!batch.length) return;
    const jobIds = [...new Set(batch.map((e) => e.row.jobId))];
    let finished = new Set<string>();
    try {
      finished = store.atomically(() => {
        for (const { row, succeeded } of batch) if (succeeded) store.finishTransfer(row.id, succeeded);
        const done = new Set<string>();
        for (const jobId of jobIds) {
          if (store.finishJobIfDone(jobId) !== undefined) done.add(jobId);
          else store.settleJobState(jobId);
        }
        pump();
        return done;
      });
    } catch (e) {
      logger.error('recording transfer outcomes failed', { transfers: batch.length, jobs: jobIds, error: e });
    }
    for (const { row, succeeded } of batch) {
      emitTransfer(row.jobId, row.id);
      if (succeeded) for (const listener of doneListeners) listener(row);
    }
    for (const jobId of jobIds) {
      if (finished.has(jobId)) logger.info('job finished', { job: jobId });
      jobChanged(jobId, finished.has(jobId));
    }
  }

  function hostAnswered(host: string): void {
    if (health.answered(host) !== 'up') return;
    const changed = store.unparkHost(host);
    logger.info('host answers again', { host, waiting: changed.length });
    for (const jobId of changed) jobChanged(jobId);
  }

  /** What a failure says of its host's health; true when the host is down, so the attempt does not count. */
  function judgeHost(row: RunnableTransfer, err: PetrelError | undefined): boolean {
    if (err?.unanswered) {
      if (health.unanswered(row.host, row.id, Date.now()) === 'down') {
        logger.warn('host stopped answering: its transfers wait', { host: row.host, since: new Date(health.downSince(row.host) ?? Date.now()).toISOString() });
      }
      return health.isDown(row.host);
    }
    if (err && ANSWERED_CODES.has(err.code)) hostAnswered(row.host);
    else health.ended(row.host, row.id);
    return false;
  }

  async function settleFailure(entry: Running, e: unknown): Promise<void> {
    const { row, task } = entry;
    const bytes = { bytesDone: entry.progress.bytesDone, bytesTotal: entry.progress.bytesTotal };
    const abandoned = gaveUp.get(row.id);
    gaveUp.delete(row.id);
    if (abandoned && !entry.stopReason && asPetrelError(e).unanswered) {
      store.finishTransfer(row.id, { move: 'fail', ...bytes, error: toError(abandoned) });
      return;
    }
    const hostDown = judgeHost(row, entry.stopReason ? undefined : asPetrelError(e));
    if (entry.stopReason === 'shutdown') {
      store.requeueTransfer(row.id, { notBefore: 0, ...bytes, uncountAttempt: true });
      return;
    }
    if (entry.stopReason === 'cancel') {
      await engine.discard(task);
      store.finishTransfer(row.id, { move: 'stop', ...bytes });
      return;
    }
    const err = asPetrelError(e);
    if (WAITING_CODES.has(err.code)) {
      logger.info('transfer waits', { job: row.jobId, transfer: row.idx, code: err.code, reason: err.message });
      store.waitTransfer(row.id, row.jobId, { reason: err.message, hint: err.hint, ...bytes });
      return;
    }
    if (err.code === 'IDP_UNAVAILABLE') {
      // The issuer is down, not the storage: wait it out without using up the transfer's attempts.
      const delay = backoffDelay(config.retry, Math.min(row.attempts, 8), deps.random);
      logger.info('transfer waits for the issuer', { job: row.jobId, transfer: row.idx, delayMs: delay, reason: err.message });
      store.requeueTransfer(row.id, { notBefore: Date.now() + delay, ...bytes, error: toError(err), uncountAttempt: true });
      return;
    }
    if (hostDown) {
      // Its host is down: the transfer waits for it (parked at the next pump), its attempt uncounted.
      store.requeueTransfer(row.id, { notBefore: 0, ...bytes, error: toError(err), uncountAttempt: true });
      return;
    }
    if (err.code === 'INTERNAL') logger.error('transfer crashed', { job: row.jobId, transfer: row.idx, error: e });
    if (err.transient && row.attempts < config.retry.attempts) {
      const delay = err.retryAfterMs ?? backoffDelay(config.retry, row.attempts, deps.random);
      logger.info('transfer will retry', { job: row.jobId, transfer: row.idx, attempt: row.attempts, delayMs: delay, code: err.code, reason: err.message });
      store.requeueTransfer(row.id, { notBefore: Date.now() + delay, ...bytes, error: toError(err) });
      return;
    }
    logger.info('transfer failed', { job: row.jobId, transfer: row.idx, attempts: row.attempts, code: err.code, reason: err.message });
    // A transient failure that ran out of attempts keeps its partial file, so `petrel job retry` resumes it.
    if (!err.transient) await engine.discard(task);
    const final = err.transient
      ? new PetrelError(err.code, `${err.message} (gave up after ${row.attempts} attempts)`, { hint: err.hint ?? 'run `petrel job retry <id>` once the storage is back' })
      : err;
    store.finishTransfer(row.id, { move: 'fail', ...bytes, error: toError(final) });
  }

  function live(entry: Running): LiveProgress {
    return { ...entry.progress, rate: entry.meter.rate() };
  }

  function flushProgress(): void {
    const updates = [];
    for (const [id, entry] of running) {
      if (entry.progress.bytesDone !== entry.savedBytes) {
        updates.push({ id, ...entry.progress });
        entry.savedBytes = entry.progress.bytesDone;
      }
    }
    store.saveProgress(updates);
  }

  function emitProgress(): void {
    const byJob = new Map<string, Running[]>();
    for (const entry of running.values()) {
      if (!events.has(entry.row.jobId)) continue;
      const list = byJob.get(entry.row.jobId) ?? [];
      list.push(entry);
      byJob.set(entry.row.jobId, list);
    }
    if (byJob.size) flushProgress();
    for (const [jobId, entries] of byJob) {
      const totals = store.byteTotals(jobId);
      const transfers = entries.map((e) => ({ index: e.row.idx, ...live(e) }));
      emit(jobId, {
        type: 'progress',
        progress: { jobId, ...totals, rate: transfers.reduce((s, t) => s + t.rate, 0), transfers },
      });
    }
  }

  async function waitSettled(entries: Running[], timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(entries.map((e) => e.settled)),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    // What the settled transfers achieved is in the store when this returns.
    recordEnds();
  }

  return {
    /** Calls `listener` with a job's id whenever its state, counts or waiting reason may have changed; returns the unsubscribe. */
    onJobChanged(listener: JobListener): () => void {
      jobListeners.add(listener);
      return () => jobListeners.delete(listener);
    },

    /** Calls `listener` with each transfer that succeeded; returns the unsubscribe. */
    onTransferDone(listener: (row: RunnableTransfer) => void): () => void {
      doneListeners.add(listener);
      return () => doneListeners.delete(listener);
    },

    start(): void {
      // Host health starts afresh with each run: what waited for a host in the last one is queued.
      store.unparkHost();
      const orphans = store.requeueOrphans(deps.runId);
      if (orphans) logger.info('re-queued transfers a previous run left running', { count: orphans });
      for (const jobId of store.unfinishedJobIds()) store.finishJobIfDone(jobId);
      flushTimer = setInterval(flushProgress, config.progressFlushMs);
      progressTimer = setInterval(emitProgress, 500);
      flushTimer.unref();
      progressTimer.unref();
      pump();
    },

    /** Waiting transfers try again: a credential appeared or the wallet opened. */
    resumeWaiting(): number {
      const n = store.resumeWaiting();
      if (n) {
        logger.info('waiting transfers resume', { count: n });
        pump();
      }
      return n;
    },

    /** New or re-queued work is in the store. */
    wake(): void {
      pump();
    },

    /** Live byte counts of running transfers, for views. */
    live(transferId: number): LiveProgress | undefined {
      const entry = running.get(transferId);
      return entry ? live(entry) : undefined;
    },

    liveRate(jobId: string): number {
      let rate = 0;
      for (const entry of running.values()) if (entry.row.jobId === jobId) rate += entry.meter.rate();
      return rate;
    },

    flushProgress,

    /** Stops a job: queued transfers end at once, running ones are aborted and their leftovers removed. */
    async cancel(jobId: string): Promise<void> {
      const res = store.cancelJob(jobId);
      if (!res) throw jobNotFound(jobId);
      if (res.job.finishedAt !== null) throw new PetrelError('JOB_FINISHED', `job ${jobId} has already ${res.job.state}`, { hint: 'nothing to cancel' });
      const aborted: Running[] = [];
      for (const id of res.running) {
        const entry = running.get(id);
        if (!entry) continue;
        entry.stopReason = 'cancel';
        entry.controller.abort(new PetrelError('TRANSFER_CANCELLED', 'cancelled'));
        aborted.push(entry);
      }
      const options = parseJobOptions(res.job.options);
      for (const t of res.interrupted) {
        await engine.discard({ kind: res.job.kind, source: t.source, destination: t.destination, token: res.job.token, ...taskOptionsOf(options) });
      }
      await waitSettled(aborted, 10_000);
      if (store.finishJobIfDone(jobId)) logger.info('job cancelled', { job: jobId });
      jobChanged(jobId);
    },

    /** Stop taking work and abort running transfers so that they resume at the next start. */
    async stop(): Promise<void> {
      stopping = true;
      clearTimeout(wakeTimer);
      clearInterval(flushTimer);
      clearInterval(progressTimer);
      const entries = [...running.values()];
      for (const entry of entries) {
        entry.stopReason ??= 'shutdown';
        entry.controller.abort(new PetrelError('TRANSFER_INTERRUPTED', 'the agent is stopping'));
      }
      await waitSettled(entries, 10_000);
      flushProgress();
      await engine.close();
    },

    runningCount(): number {
      return running.size;
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
