import { caFileFromEnv, type AgentConfig } from '../config.js';
import { PetrelError } from '../errors.js';
import { thirdPartyCopy } from './copy.js';
import { DEFAULT_DOWNLOAD_LIMITS, download, type DownloadLimits } from './get.js';
import { createHttpClient, type HttpClientOptions } from './http.js';
import { removeFile } from './local-file.js';
import { upload } from './put.js';
import { partPath, type TransferEngine } from './task.js';

/** The HTTP engine: get and put over one pooled client. */
export function createHttpEngine(opts: HttpClientOptions & { copyMarkerTimeoutMs?: number } & Partial<DownloadLimits> = {}): TransferEngine {
  const shared = createHttpClient(opts);
  const limits: DownloadLimits = { maxUnknownSizeBytes: opts.maxUnknownSizeBytes ?? DEFAULT_DOWNLOAD_LIMITS.maxUnknownSizeBytes, diskReserveBytes: opts.diskReserveBytes };
  const copyOptions = { markerTimeoutMs: opts.copyMarkerTimeoutMs ?? 120_000 };
  return {
    async run(task, ctx) {
      // The same pools, with the job's own redirect policy.
      const client = task.allowInsecureRedirect ? { ...shared, allowInsecureRedirect: true } : shared;
      switch (task.kind) {
        case 'get':
          return download(client, task, ctx, limits);
        case 'put':
          return upload(client, task, ctx);
        case 'copy':
          return thirdPartyCopy(client, task, ctx, copyOptions);
        default:
          throw new PetrelError('TRANSFER_REFUSED', `${task.kind} jobs are not supported by this agent yet`, { hint: 'upgrade petrel' });
      }
    },
    async discard(task) {
      // Uploads and copies clean up after themselves (see upload(), thirdPartyCopy()): only what
      // they wrote, never a file that was there before (a 412 "exists" must not delete it).
      if (task.kind === 'get') await removeFile(partPath(task.destination));
    },
    async close() {
      await shared.close();
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
  });
}
