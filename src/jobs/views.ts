import type { ChecksumChoice, Counts, JobView, TransferView } from '../api/index.js';
import type { LiveProgress } from './scheduler.js';
import type { JobRow, TransferRow } from './schema.js';
import type { ByteTotals } from './records.js';
import { isQueued } from './model.js';
import { parseJobOptions } from './options.js';

const iso = (ms: number | null | undefined): string | undefined => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString());

function errorOf(code: string | null, message: string | null, hint: string | null) {
  return code ? { error: { code, message: message ?? code, ...(hint ? { hint } : {}) } } : {};
}

function waitingOf(reason: string | null, hint: string | null) {
  return reason ? { waiting: { reason, ...(hint ? { hint } : {}) } } : {};
}

export function transferView(row: TransferRow, live?: LiveProgress): TransferView {
  const [algorithm, value] = row.checksumValue ? [row.checksumValue.slice(0, row.checksumValue.indexOf(':')), row.checksumValue.slice(row.checksumValue.indexOf(':') + 1)] : [];
  return {
    index: row.idx,
    source: row.source,
    destination: row.destination,
    state: row.state,
    bytesDone: live?.bytesDone ?? row.bytesDone,
    bytesTotal: live?.bytesTotal ?? row.bytesTotal,
    rate: live?.rate ?? 0,
    attempts: row.attempts,
    ...(isQueued(row.state) && row.notBefore > Date.now() ? { nextAttemptAt: iso(row.notBefore) } : {}),
    ...(algorithm && value ? { checksum: { algorithm, value, verified: Boolean(row.checksumVerified) } } : {}),
    ...(row.servedBy ? { servedBy: row.servedBy } : {}),
    ...(row.serverAttempts ? { serverAttempts: JSON.parse(row.serverAttempts) as { server: string; error: string }[] } : {}),
    // A queued or running transfer may carry the error of its previous attempt: shown as such.
    ...errorOf(row.errorCode, row.errorMessage, row.errorHint),
    ...waitingOf(row.waitingReason, row.waitingHint),
    ...(row.stagedAt ? { tape: 'on-disk' as const } : row.stageRequest !== null && !row.finishedAt ? { tape: 'on-tape' as const } : {}),
    ...(row.startedAt ? { startedAt: iso(row.startedAt) } : {}),
    ...(row.finishedAt ? { finishedAt: iso(row.finishedAt) } : {}),
  };
}

export function jobView(
  row: JobRow,
  counts: Counts,
  bytes: ByteTotals,
  rate: number,
  recalls?: { requests: number; lastPolledAt: number | null },
  listing?: { directories: number; files: number },
): JobView {
  const checksum: ChecksumChoice = parseJobOptions(row.options).checksum;
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    checksum,
    createdAt: iso(row.createdAt) ?? '',
    ...(row.startedAt ? { startedAt: iso(row.startedAt) } : {}),
    ...(row.finishedAt ? { finishedAt: iso(row.finishedAt) } : {}),
    counts,
    bytesDone: bytes.bytesDone,
    bytesTotal: bytes.bytesTotal,
    rate,
    ...errorOf(row.errorCode, row.errorMessage, row.errorHint),
    ...waitingOf(row.waitingReason, row.waitingHint),
    ...(listing ? { listing } : {}),
    ...(recalls ? { recalls: { requests: recalls.requests, ...(recalls.lastPolledAt ? { lastPolledAt: iso(recalls.lastPolledAt) } : {}) } } : {}),
  };
}
