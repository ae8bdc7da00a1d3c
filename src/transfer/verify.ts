import { PetrelError } from '../errors.js';
import type { ChecksumAlgorithm } from './checksum.js';
import type { TransferResult, TransferTask } from './task.js';

/**
 * Compares the checksum computed while streaming with the server's. A mismatch discards the
 * bad copy and fails: as transient the first time (a retry may heal a flaky path), final after that.
 * A server that reports no digest leaves the transfer unverified rather than failed.
 */
export async function verifyChecksum(
  task: TransferTask,
  algo: ChecksumAlgorithm,
  local: string,
  remote: string | undefined,
  discard: () => Promise<void>,
): Promise<NonNullable<TransferResult['checksum']>> {
  if (remote === undefined) return { algorithm: algo, value: local, verified: false };
  if (remote !== local) {
    await discard();
    const again = task.previousError === 'TRANSFER_CHECKSUM_MISMATCH';
    throw new PetrelError('TRANSFER_CHECKSUM_MISMATCH', `${algo} mismatch for ${task.source} → ${task.destination}: the server says ${remote}, the bytes give ${local}`, {
      transient: !again,
      hint: again ? 'the data differs on every try: tell the storage operators; the copy was removed' : undefined,
    });
  }
  return { algorithm: algo, value: local, verified: true };
}
