import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { TokenSlot } from '../domain.js';
import { PetrelError } from '../errors.js';

/**
 * How a job's explicit token is kept in the database (README "Security model"):
 * - wallet open: sealed with AES-256-GCM under a key derived from the wallet's seal key;
 * - no wallet: as given, in the 0600 database, as protected as the file it came from;
 * - wallet initialised but closed: in the agent's memory only; the column says so.
 */
const SEALED = 'sealed:v1:';
const IN_MEMORY = 'in-memory';

export type TokenStorage = 'sealed' | 'plain' | 'memory';

/** The vault's key for a job's token column: a copy's source token is kept apart from the job's token. */
export const vaultKey = (slot: TokenSlot): string => (slot.column === 'sourceToken' ? `${slot.jobId}:source` : slot.jobId);

export function storageOf(column: string | null): TokenStorage | undefined {
  if (column === null) return undefined;
  if (column.startsWith(SEALED)) return 'sealed';
  return column === IN_MEMORY ? 'memory' : 'plain';
}

function deriveSealingKey(sealKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', sealKey, Buffer.alloc(0), 'petrel job tokens v1', 32));
}

export function createJobTokenVault(opts: { walletInitialized(): boolean }) {
  let key: Buffer | undefined;
  const held = new Map<string, string>();

  function seal(token: string, k: Buffer): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', k, nonce);
    const ct = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return SEALED + Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString('base64');
  }

  function unseal(column: string, k: Buffer): string {
    const raw = Buffer.from(column.slice(SEALED.length), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', k, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      throw new PetrelError('CREDENTIAL_NEEDED', "the job's token was sealed by another wallet and cannot be read", { hint: 'cancel the job and submit it again with --token FILE' });
    }
  }

  return {
    /** The wallet opened (its seal key) or closed (undefined). */
    setSealKey(sealKey: Buffer | undefined): void {
      key?.fill(0);
      key = sealKey ? deriveSealingKey(sealKey) : undefined;
    },

    isOpen: (): boolean => key !== undefined,

    /** What to write in the job's token column for `token`; a memory-held token is kept here. */
    columnFor(jobId: string, token: string): string {
      if (key) return seal(token, key);
      if (!opts.walletInitialized()) return token;
      held.set(jobId, token);
      return IN_MEMORY;
    },

    /**
     * The explicit token of a job, or null when it has none. A sealed token needs the open
     * wallet; a memory-held one lost in a restart is treated as absent (the wallet's own
     * credentials serve the job if they can).
     */
    read(jobId: string, column: string | null): string | null {
      switch (storageOf(column)) {
        case undefined:
          return null;
        case 'plain':
          return column;
        case 'memory':
          return held.get(jobId) ?? null;
        case 'sealed':
          if (!key) throw new PetrelError('WALLET_CLOSED', "the job's token is sealed with the wallet, which is closed", { hint: 'open it with `petrel wallet open`; the job then goes on by itself' });
          return unseal(column as string, key);
      }
    },

    /** With the wallet open: the sealed form of a plain or memory-held token, to write back. */
    resealed(jobId: string, column: string): string | undefined {
      if (!key) return undefined;
      const storage = storageOf(column);
      const token = storage === 'plain' ? column : storage === 'memory' ? held.get(jobId) : undefined;
      if (token === undefined) return undefined;
      held.delete(jobId);
      return seal(token, key);
    },

    forget(jobId: string): void {
      held.delete(jobId);
    },
  };
}

export type JobTokenVault = ReturnType<typeof createJobTokenVault>;
