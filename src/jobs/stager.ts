import { createHmac, randomBytes } from 'node:crypto';
import type { AgentConfig } from '../config.js';
import { asPetrelError, PetrelError, WAITING_CODES, type ErrorInfo } from '../errors.js';
import type { Logger } from '../log.js';
import { storagePath, type FileStage, type TapeClient, type TapeEndpoint } from '../tape/index.js';
import { isFederated } from '../transfer/index.js';
import { backoffDelay } from './backoff.js';
import { parseJobOptions } from './options.js';
import type { HeldTransfer, Recalls } from './recalls.js';
import type { StageRequestRow } from './schema.js';
import type { JobStore } from './store.js';

/** A recall's token, and the wallet credential it came from (none for a job's explicit token). */
export interface StageToken {
  token: string | null;
  credentialId?: string | undefined;
}

export interface StagerDeps {
  store: JobStore;
  recalls: Recalls;
  tape: TapeClient;
  config: AgentConfig;
  logger: Logger;
  /** The token for recalling a transfer's source (storage.stage), and its credential. Throws a waiting error when the user must act. */
  stageTokenFor(t: HeldTransfer): Promise<StageToken>;
  random?: () => number;
}

/** A stage request being filled, in memory until sent; its files are in the database already (held). */
interface Filling {
  row: number;
  endpoint: TapeEndpoint;
  credential: string;
  token: string | null;
  count: number;
  since: number;
}

const clock = (at: number) => new Date(at).toTimeString().slice(0, 5);
const RETRY_HINT = 'run `petrel job retry <id>` to ask again';
const TAKE = 500;

/**
 * Tape recalls, FTS's way done better: the files every job wants recalled are grouped by (tape
 * endpoint, credential) into stage requests of up to `tape.batchSize`, sent when full or when
 * the oldest has waited `tape.fillWaitMs`, at most `tape.maxRequestsPerEndpoint` outstanding at
 * an endpoint. Each request is polled with a doubling interval; one poll answers for all its
 * files. Poll failures are not the files' failures: the storage works on, and the request is
 * polled later. Everything about a request is in the database (recalls.ts), so a restart polls
 * the same requests and never stages a file twice.
 */
export function createStager(deps: StagerDeps) {
  const { store, recalls, tape, config, logger } = deps;
  const cfg = config.tape;
  const filling = new Map<string, Filling>();
  const listeners = new Set<(jobId: string) => void>();
  const onDiskListeners = new Set<() => void>();
  let fillTimer: NodeJS.Timeout | undefined;
  let laterTimer: { at: number; timer: NodeJS.Timeout } | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let pumping: Promise<void> | undefined;
  let again = false;
  let polling: Promise<void> | undefined;
  let stopped = false;

  // Names a job token's batches by an HMAC under a key of this run: no fingerprint of it outlives the run.
  const runKey = randomBytes(32);
  /** Whose token a request goes with: `wallet:<credential id>`, `token:<hmac>` or `none`; never two in one request. */
  const credentialOf = (t: StageToken): string =>
    t.credentialId !== undefined ? `wallet:${t.credentialId}` : t.token ? `token:${createHmac('sha256', runKey).update(t.token).digest('hex').slice(0, 16)}` : 'none';

  const changed = (jobIds: Iterable<string>) => {
    for (const jobId of new Set(jobIds)) {
      if (!store.finishJobIfDone(jobId)) store.settleJobState(jobId);
      for (const l of listeners) l(jobId);
    }
  };

  /**
   * Takes what waits to be recalled into requests being filled. Tokens and endpoints are
   * resolved for all rows first; joining batches and holding the files then happens without a
   * pause, so a fill timer never sends a batch that is still being joined.
   */
  async function take(): Promise<void> {
    while (!stopped) {
      const taken = recalls.toStage(TAKE);
      if (!taken.length) break;
      // Federation objects are prestaged by reading them through a cache: the engine's work.
      const federated = taken.filter((r) => isFederated(new URL(r.source)));
      if (federated.length) {
        recalls.passOver(federated.map((r) => r.id));
        for (const l of onDiskListeners) l();
      }
      const rows = taken.filter((r) => !federated.includes(r));
      const resolved: { row: HeldTransfer; endpoint: TapeEndpoint; stageToken: StageToken }[] = [];
      for (const row of rows) {
        if (stopped) return;
        try {
          const stageToken = await deps.stageTokenFor(row);
          resolved.push({ row, stageToken, endpoint: await tape.endpointFor(new URL(row.source), stageToken.token) });
        } catch (e) {
          refuse(row, asPetrelError(e));
        }
      }
      if (stopped) return;
      const byBatch = new Map<Filling, number[]>();
      const full: Filling[] = [];
      for (const { row, endpoint, stageToken } of resolved) {
        const batch = batchFor(endpoint, stageToken);
        byBatch.set(batch, [...(byBatch.get(batch) ?? []), row.id]);
        if (++batch.count >= cfg.batchSize) {
          filling.delete(keyOf(batch));
          full.push(batch);
        }
      }
      for (const [batch, ids] of byBatch) recalls.hold(ids, batch.row, `to be recalled from tape: a request to ${batch.endpoint.origin} is being filled`);
      for (const batch of full) sendLater(batch);
      changed(taken.map((r) => r.jobId));
    }
    armFill();
    // What was put back for later is taken then, even if the timer that was to do it fired a moment early.
    const next = recalls.nextToStageAt();
    if (next !== undefined) wakeAt(next);
  }

  /** A file as a stage request names it, with its own job's disk lifetime (a batch mixes jobs). */
  const stageFile = (t: HeldTransfer) => ({ path: storagePath(new URL(t.source)), diskLifetime: parseJobOptions(t.options).diskLifetime });

  const keyOf = (b: Pick<Filling, 'endpoint' | 'credential'>) => `${b.endpoint.uri}\n${b.credential}`;

  /** The request being filled for (endpoint, credential); a new one when there is none. */
  function batchFor(endpoint: TapeEndpoint, stageToken: StageToken): Filling {
    const credential = credentialOf(stageToken);
    const key = keyOf({ endpoint, credential });
    let batch = filling.get(key);
    if (!batch) {
      batch = { row: recalls.openRequest({ endpoint: endpoint.uri, origin: endpoint.origin, credential }), endpoint, credential, token: stageToken.token, count: 0, since: Date.now() };
      filling.set(key, batch);
    }
    return batch;
  }

  /** What was put back until `at` (a busy endpoint, a storage away for now) is taken again then. */
  function wakeAt(at: number): void {
    if (stopped || (laterTimer && laterTimer.at <= at)) return;
    if (laterTimer) clearTimeout(laterTimer.timer);
    laterTimer = {
      at,
      timer: setTimeout(() => {
        laterTimer = undefined;
        void wake();
      }, Math.max(10, at - Date.now() + 5)),
    };
  }

  /** A file that cannot be recalled now: it waits for the user, comes back later, or fails. */
  function refuse(row: HeldTransfer, err: PetrelError): void {
    if (WAITING_CODES.has(err.code)) {
      store.waitTransfer(row.id, row.jobId, { reason: err.message, hint: err.hint, bytesDone: 0, bytesTotal: null });
    } else if (err.transient) {
      // The storage or the issuer is away for now: taken again later.
      const notBefore = Date.now() + backoffDelay(config.retry, 1, deps.random);
      store.requeueTransfer(row.id, { notBefore, bytesDone: 0, bytesTotal: null, error: err.toJSON() });
      wakeAt(notBefore);
    } else {
      store.finishTransfer(row.id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: err.toJSON() });
    }
    changed([row.jobId]);
  }

  function armFill(): void {
    clearTimeout(fillTimer);
    fillTimer = undefined;
    const oldest = Math.min(...[...filling.values()].map((b) => b.since));
    if (!Number.isFinite(oldest) || stopped) return;
    fillTimer = setTimeout(() => {
      const due = Date.now() - cfg.fillWaitMs;
      for (const [key, batch] of filling) {
        if (batch.since > due) continue;
        filling.delete(key);
        sendLater(batch);
      }
      armFill();
    }, Math.max(10, oldest + cfg.fillWaitMs - Date.now()));
  }

  const sending = new Set<Promise<void>>();
  /** Until when an endpoint that answered 429 (or was away) gets no new request. */
  const backedOff = new Map<string, number>();
  /** Stage requests being sent, per endpoint. */
  const inFlight = new Map<string, number>();
  function sendLater(batch: Filling): void {
    if (stopped) return;
    const p = send(batch)
      .catch((e: unknown) => logger.error('sending a tape recall failed', { error: e }))
      .finally(() => sending.delete(p));
    sending.add(p);
  }

  /** A request not sent: its files go back, to be taken into a new one from `notBefore`. */
  function putBack(batch: Filling, held: readonly HeldTransfer[], notBefore: number): void {
    recalls.dropRequest(batch.row);
    changed(recalls.unhold(held.map((t) => t.id), notBefore));
    wakeAt(notBefore);
  }

  /** Sends a filled request; what the storage refuses for now goes back to be taken again later. */
  async function send(batch: Filling): Promise<void> {
    const held = recalls.held(batch.row);
    if (!held.length) return recalls.dropRequest(batch.row);
    const uri = batch.endpoint.uri;
    const backoff = backedOff.get(uri) ?? 0;
    // The endpoint said 429 or was away: nothing goes to it before its backoff ends.
    if (backoff > Date.now()) return putBack(batch, held, backoff);
    // Requests being sent count too: several batches may fill up at once. These wait for one of its requests to end.
    if (recalls.outstanding(uri) + (inFlight.get(uri) ?? 0) >= cfg.maxRequestsPerEndpoint) return putBack(batch, held, Date.now() + cfg.firstPollMs);
    inFlight.set(uri, (inFlight.get(uri) ?? 0) + 1);
    try {
      const made = await tape.stage(batch.endpoint, held.map(stageFile), batch.token);
      const now = Date.now();
      let at = 0;
      for (const [i, request] of made.entries()) {
        const row = i === 0 ? batch.row : recalls.openRequest({ endpoint: batch.endpoint.uri, origin: batch.endpoint.origin, credential: batch.credential });
        if (i > 0) recalls.move(held.slice(at, at + request.files.length).map((t) => t.id), row);
        at += request.files.length;
        recalls.submitted(row, request.requestId, { now, firstPollMs: cfg.firstPollMs, reason: `on tape: recall ${request.requestId} at ${batch.endpoint.origin} since ${clock(now)}` });
      }
      logger.info('tape recall requested', { endpoint: batch.endpoint.uri, files: held.length, requests: made.length });
      changed(held.map((t) => t.jobId));
      armPoll();
    } catch (e) {
      const err = asPetrelError(e);
      logger.warn('tape recall request not taken', { endpoint: batch.endpoint.uri, files: held.length, code: err.code, reason: err.message });
      if (err.transient) {
        const notBefore = Date.now() + (err.retryAfterMs ?? backoffDelay(config.retry, 1, deps.random));
        backedOff.set(uri, notBefore);
        putBack(batch, held, notBefore);
      } else {
        recalls.dropRequest(batch.row);
        changed(recalls.failed(held.map((t) => ({ transfer: t, error: err.toJSON() }))));
      }
    } finally {
      inFlight.set(uri, (inFlight.get(uri) ?? 1) - 1);
    }
  }

  function armPoll(): void {
    clearTimeout(pollTimer);
    pollTimer = undefined;
    const at = recalls.nextPollAt();
    if (at === undefined || stopped) return;
    pollTimer = setTimeout(() => void pollDue(), Math.max(10, at - Date.now()));
  }

  async function pollAllDue(): Promise<void> {
    try {
      for (const request of recalls.dueRequests(Date.now())) {
        if (stopped) break;
        await pollOne(request);
      }
    } catch (e) {
      logger.error('polling tape recalls failed', { error: e });
    }
  }

  /**
   * One round of polls at a time. The round's end is chained with .finally, not written in the
   * round itself: a round with nothing due ends synchronously, and would otherwise clear
   * `polling` before it is set, leaving it set for good (no poll ever again).
   */
  function pollDue(): Promise<void> {
    polling ??= pollAllDue().finally(() => {
      polling = undefined;
      armPoll();
      // A request that ended leaves room at its endpoint.
      void wake();
    });
    return polling;
  }

  const endpointOf = (r: StageRequestRow): TapeEndpoint => ({ origin: r.origin, uri: r.endpoint, version: 'v1' });

  async function pollOne(request: StageRequestRow): Promise<void> {
    const held = recalls.held(request.id);
    const endpoint = endpointOf(request);
    const requestId = request.requestId as string;
    const now = Date.now();
    const nextDelay = Math.min(cfg.maxPollMs, Math.max(cfg.firstPollMs, request.pollDelayMs * 2));
    if (!held.length) {
      recalls.finishRequest(request.id, now);
      const any = recalls.anyOf(request.id);
      const token = any ? await deps.stageTokenFor(any).then((t) => t.token, () => null) : null;
      await forget(endpoint, requestId, token);
      return;
    }
    const paths = held.map((t) => storagePath(new URL(t.source)));
    let token: string | null;
    let files: FileStage[];
    try {
      token = (await deps.stageTokenFor(held[0] as HeldTransfer)).token;
      files = await tape.poll(endpoint, requestId, paths, token);
    } catch (e) {
      const err = asPetrelError(e);
      if (err.code === 'TRANSFER_NOT_FOUND') return forgotten(request, held);
      if (now - request.createdAt >= cfg.stageTimeoutMs) {
        // Polls that never answer still end: the files fail with the last reason.
        const error = { code: 'TRANSFER_TIMEOUT' as const, message: `recall ${requestId} not answering for ${Math.round(cfg.stageTimeoutMs / 3_600_000)} h (tape.stageTimeoutMs); last: ${err.message}`, hint: RETRY_HINT };
        changed(recalls.failed(held.map((transfer) => ({ transfer, error })), now));
        recalls.finishRequest(request.id, now);
        return;
      }
      // Not the files' failure: the storage keeps working on the request.
      logger.info('tape recall poll failed; polling again later', { request: requestId, code: err.code, reason: err.message });
      recalls.polled(request.id, { now, delayMs: nextDelay, error: err.message });
      return;
    }
    recalls.polled(request.id, { now, delayMs: nextDelay });
    const onDisk: { transfer: HeldTransfer; movesOn: boolean }[] = [];
    const failed: { transfer: HeldTransfer; error: ErrorInfo }[] = [];
    files.forEach((f, i) => {
      const transfer = held[i] as HeldTransfer;
      if (f.status === 'on-disk') onDisk.push({ transfer, movesOn: movesOn(transfer) });
      else if (f.status === 'failed') failed.push({ transfer, error: { code: 'TAPE_STAGE_FAILED', message: `${transfer.source}: ${f.error ?? 'the recall failed'}`, hint: 'ask the storage operators about the file; `petrel job retry <id>` asks again' } });
      else if (f.status === 'cancelled') failed.push({ transfer, error: { code: 'TAPE_STAGE_FAILED', message: `${transfer.source}: the recall was cancelled at the storage`, hint: RETRY_HINT } });
      else if (now - request.createdAt >= cfg.stageTimeoutMs) {
        failed.push({ transfer, error: { code: 'TRANSFER_TIMEOUT', message: `${transfer.source}: not on disk ${Math.round(cfg.stageTimeoutMs / 3_600_000)} h after its recall (tape.stageTimeoutMs)`, hint: RETRY_HINT } });
      }
    });
    const jobIds = [...recalls.onDisk(onDisk, now), ...recalls.failed(failed, now)];
    if (onDisk.some((d) => d.movesOn)) for (const l of onDiskListeners) l();
    changed(jobIds);
    if (onDisk.length + failed.length === held.length) {
      recalls.finishRequest(request.id, now);
      // Files that move on are released, and the request removed, once they have moved (releaseMoved).
      if (!onDisk.some((d) => d.movesOn)) await forget(endpoint, requestId, token);
    }
  }

  /** Forgetting a request at the storage is best effort: it keeps them a while anyway. */
  async function forget(endpoint: TapeEndpoint, requestId: string, token: string | null): Promise<void> {
    await tape.remove(endpoint, requestId, token).catch((e: unknown) => logger.debug('tape recall not removed', { request: requestId, error: e }));
  }

  /** Files moved after their recall, by request, released together a moment later. */
  const toRelease = new Map<number, HeldTransfer[]>();
  let releaseTimer: NodeJS.Timeout | undefined;
  async function releaseMoved(): Promise<void> {
    releaseTimer = undefined;
    const batches = [...toRelease];
    toRelease.clear();
    for (const [requestRow, moved] of batches) {
      const request = recalls.getRequest(requestRow);
      if (!request?.requestId) continue;
      const endpoint = endpointOf(request);
      try {
        const token = (await deps.stageTokenFor(moved[0] as HeldTransfer)).token;
        await tape.release(endpoint, request.requestId, moved.map((t) => storagePath(new URL(t.source))), token);
        // The last of its files moved: the request is done at the storage too.
        if (request.finishedAt !== null && !recalls.stillToMove(requestRow)) await forget(endpoint, request.requestId, token);
      } catch (e) {
        logger.info('recalled files not released (the storage unpins them when their lifetime ends)', { request: request.requestId, reason: asPetrelError(e).message });
      }
    }
  }

  /** A prestage ends once its file is on disk; a --stage transfer goes on to move it. */
  const movesOn = (t: HeldTransfer) => Boolean(parseJobOptions(t.options).stage);

  /** The storage no longer knows the request (404): its files are asked for again, once. */
  async function forgotten(request: StageRequestRow, held: HeldTransfer[]): Promise<void> {
    const now = Date.now();
    if (request.resubmitted) {
      const error = { code: 'TAPE_STAGE_FAILED' as const, message: `the storage forgot recall ${request.requestId} twice`, hint: RETRY_HINT };
      changed(recalls.failed(held.map((transfer) => ({ transfer, error: { ...error, message: `${transfer.source}: ${error.message}` } })), now));
      recalls.finishRequest(request.id, now);
      return;
    }
    try {
      const token = (await deps.stageTokenFor(held[0] as HeldTransfer)).token;
      const [made] = await tape.stage(endpointOf(request), held.map(stageFile), token);
      if (!made) throw new PetrelError('TRANSFER_PROTOCOL', 'the storage made no request');
      recalls.resubmitted(request.id, made.requestId, { now, firstPollMs: cfg.firstPollMs });
      logger.warn('tape recall forgotten by the storage: asked again', { was: request.requestId, now: made.requestId, files: held.length });
    } catch (e) {
      recalls.polled(request.id, { now, delayMs: cfg.firstPollMs, error: asPetrelError(e).message });
    }
  }

  async function takeAll(): Promise<void> {
    try {
      do {
        again = false;
        await take();
      } while (again && !stopped);
    } catch (e) {
      logger.error('taking files into tape recalls failed', { error: e });
    }
  }

  function wake(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (pumping) {
      again = true;
      return pumping;
    }
    pumping = takeAll().finally(() => {
      pumping = undefined;
    });
    return pumping;
  }

  return {
    /** Calls `listener` with a job's id whenever its recalls changed it. */
    onJobChanged(listener: (jobId: string) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    /** Calls `listener` when --stage files came on disk (the scheduler may move them). */
    onFilesOnDisk(listener: () => void): () => void {
      onDiskListeners.add(listener);
      return () => onDiskListeners.delete(listener);
    },

    /** New work may wait to be recalled. */
    wake,

    /** A transfer moved its recalled file: the storage may unpin it (release, batched per request). */
    moved(t: HeldTransfer): void {
      if (t.stageRequest === null || stopped) return;
      toRelease.set(t.stageRequest, [...(toRelease.get(t.stageRequest) ?? []), t]);
      releaseTimer ??= setTimeout(() => void releaseMoved().catch((e: unknown) => logger.error('releasing recalled files failed', { error: e })), 500);
    },

    /** Polls what is due now (tests, and `petrel job status` wanting fresh figures, need not wait for the timer). */
    pollNow: pollDue,

    /** Before a job is cancelled: its files' recalls are withdrawn at the storage (its paths only). */
    async cancel(jobId: string): Promise<void> {
      for (const { request, paths } of recalls.heldByJob(jobId)) {
        try {
          const token = (await deps.stageTokenFor(paths[0] as HeldTransfer)).token;
          await tape.cancel(endpointOf(request), request.requestId as string, paths.map((t) => storagePath(new URL(t.source))), token);
        } catch (e) {
          logger.warn('tape recall not cancelled at the storage', { request: request.requestId, error: asPetrelError(e).message });
        }
      }
    },

    start(): void {
      const unsent = recalls.dropUnsent();
      if (unsent) logger.info('tape recalls a previous run was still filling go out again', { files: unsent });
      armPoll();
      void wake();
    },

    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(fillTimer);
      clearTimeout(pollTimer);
      clearTimeout(releaseTimer);
      if (laterTimer) clearTimeout(laterTimer.timer);
      await Promise.allSettled([pumping, polling, ...sending]);
    },
  };
}

export type Stager = ReturnType<typeof createStager>;
