import { createTask, validate, type ScheduledTask } from 'node-cron';
import { PetrelError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RefreshOutcome, TokenBroker } from './broker.js';

export interface RefresherOptions {
  broker: TokenBroker;
  /** Cron expression; a seconds field is allowed (tests compress hours into seconds). */
  schedule: string;
  windowMs: number;
  maxBackoffMs: number;
  logger: Logger;
  /** After each run that renewed something: waiting transfers may go on now. */
  onRenewed(outcome: RefreshOutcome): void;
}

/**
 * Background refresh (node-cron): renews access tokens that expire within the window while the
 * wallet is open. Runs never overlap; a credential whose issuer failed is left alone for a
 * doubling backoff, and keeps its old token meanwhile.
 */
export function createRefresher(opts: RefresherOptions) {
  if (!validate(opts.schedule)) {
    throw new PetrelError('USAGE', `tokens.refreshSchedule "${opts.schedule}" is not a cron expression`, { hint: 'e.g. "*/10 * * * *" (every 10 minutes)' });
  }
  const backoff = new Map<string, { until: number; delayMs: number }>();
  let running: Promise<RefreshOutcome> | undefined;

  async function runOnce(ignoreBackoff: boolean): Promise<RefreshOutcome> {
    const now = Date.now();
    const outcome = await opts.broker.refreshExpiring(opts.windowMs, (id) => !ignoreBackoff && (backoff.get(id)?.until ?? 0) > now);
    for (const r of outcome.refreshed) backoff.delete(r.credential);
    for (const f of outcome.failed) {
      if (f.code !== 'IDP_UNAVAILABLE') continue;
      const prev = backoff.get(f.credential)?.delayMs;
      const delayMs = Math.min(opts.maxBackoffMs, prev ? prev * 2 : 15_000);
      backoff.set(f.credential, { until: Date.now() + delayMs, delayMs });
    }
    if (outcome.refreshed.length || outcome.failed.length) {
      opts.logger.info('background refresh', { refreshed: outcome.refreshed.length, failed: outcome.failed.map((f) => `${f.credential}: ${f.code}`) });
    }
    if (outcome.refreshed.length) opts.onRenewed(outcome);
    return outcome;
  }

  /** One run at a time: a second caller shares the run in progress. */
  function run(ignoreBackoff = false): Promise<RefreshOutcome> {
    running ??= runOnce(ignoreBackoff).finally(() => {
      running = undefined;
    });
    return running;
  }

  let task: ScheduledTask | undefined;
  return {
    start(): void {
      task = createTask(opts.schedule, async () => {
        try {
          await run();
        } catch (e) {
          if (!(e instanceof PetrelError && e.code === 'WALLET_CLOSED')) opts.logger.warn('background refresh failed', { error: e });
        }
      }, { noOverlap: true, name: 'petrel-token-refresh' });
      void task.start();
    },
    /** `POST /v1/credentials/refresh`: run now, ignoring backoffs, and say what happened. */
    runNow: (): Promise<RefreshOutcome> => run(true),
    async stop(): Promise<void> {
      await task?.destroy();
      await running?.catch(() => undefined);
    },
  };
}

export type Refresher = ReturnType<typeof createRefresher>;
