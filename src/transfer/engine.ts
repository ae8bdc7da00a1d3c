import { caFileFromEnv, type AgentConfig } from '../config.js';
import { KIND_SIDES, type JobKind } from '../domain.js';
import { PetrelError } from '../errors.js';
import { thirdPartyCopy } from './copy.js';
import { DEFAULT_DOWNLOAD_LIMITS, download, type DownloadLimits } from './get.js';
import { sameAtDestination } from './existing.js';
import { createHttpClient, type HttpClientOptions } from './http.js';
import { createRangeWorkers } from './range-workers.js';
import type { StreamSettings } from './ranged-get.js';
import { removeFile } from './local-file.js';
import { upload } from './put.js';
import { partPath, type TransferEngine, type TransferResult } from './task.js';

export interface HttpEngineOptions extends HttpClientOptions {
  copyMarkerTimeoutMs?: number;
  maxUnknownSizeBytes?: number;
  diskReserveBytes?: number | undefined;
  /** Large downloads in ranges at once (default: one stream), and from what size they bypass node:https. */
  download?: (StreamSettings & { directMinBytes?: number }) | undefined;
}

/** The HTTP engine: get and put over one pooled client. */
export function createHttpEngine(opts: HttpEngineOptions = {}): TransferEngine {
  const shared = createHttpClient(opts);
  const streams = opts.download?.streams ?? 1;
  const workers =
    opts.download && streams > 1
      ? createRangeWorkers(streams - 1, { caFile: opts.caFile, idleTimeoutMs: shared.idleTimeoutMs, connectTimeoutMs: shared.connectTimeoutMs })
      : undefined;
  const limits: DownloadLimits = {
    maxUnknownSizeBytes: opts.maxUnknownSizeBytes ?? DEFAULT_DOWNLOAD_LIMITS.maxUnknownSizeBytes,
    diskReserveBytes: opts.diskReserveBytes,
    ranged: workers && opts.download ? { ...opts.download, workers } : undefined,
    directMinBytes: opts.download?.directMinBytes ?? DEFAULT_DOWNLOAD_LIMITS.directMinBytes,
  };
  const copyOptions = { markerTimeoutMs: opts.copyMarkerTimeoutMs ?? 120_000 };
  return {
    async run(task, ctx) {
      // The same pools, with the job's own redirect policy.
      const client = task.allowInsecureRedirect ? { ...shared, allowInsecureRedirect: true } : shared;
      if (task.skipExisting) {
        const same = await sameAtDestination(client, task, ctx.signal);
        // Nothing moves: the job's byte counts hold only what was sent.
        if (same) return { bytesDone: 0, bytesTotal: 0, skipped: true };
      }
      // One runner per kind of the model (src/domain.ts); a kind without one is refused.
      const runners: { [K in JobKind]?: () => Promise<TransferResult> } = {
        get: () => download(client, task, ctx, limits),
        put: () => upload(client, task, ctx),
        copy: () => thirdPartyCopy(client, task, ctx, copyOptions),
      };
      const runner = runners[task.kind];
      if (!runner) throw new PetrelError('TRANSFER_REFUSED', `${task.kind} jobs are not supported by this agent yet`, { hint: 'upgrade petrel' });
      return runner();
    },
    async discard(task) {
      // Uploads and copies clean up after themselves (see upload(), thirdPartyCopy()): only what
      // they wrote, never a file that was there before (a 412 "exists" must not delete it).
      if (KIND_SIDES[task.kind].destination?.location === 'local') await removeFile(partPath(task.destination));
    },
    async close() {
      await Promise.all([shared.close(), workers?.close()]);
    },
  };
}

/** The engine as the agent and the CLI's foreground runs configure it. */
export function createConfiguredEngine(config: AgentConfig): TransferEngine {
  return createHttpEngine({
    caFile: caFileFromEnv(),
    idleTimeoutMs: config.idleTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    copyMarkerTimeoutMs: config.copyMarkerTimeoutMs,
    maxUnknownSizeBytes: config.maxUnknownSizeBytes,
    diskReserveBytes: config.diskReserveBytes,
    download: config.download,
  });
}
