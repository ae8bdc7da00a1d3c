import { PetrelError } from '../errors.js';
import { latestExpiry, type WalletContents } from './contents.js';
import type { WalletKey } from './envelope.js';
import { readWallet, unlockWallet, walletPresent } from './file.js';

export interface WalletEntryView {
  id: string;
  issuer: string;
  prefixes: string[];
  scopes: string[];
  accessTokenExpiresAt?: string;
  hasRefreshToken: boolean;
  obtainedBy: string;
  dead: boolean;
}

export interface WalletStatus {
  path: string;
  initialized: boolean;
  open: boolean;
  /** When an open wallet closes itself. */
  until?: string;
  /** Listed only while open; never a secret. */
  entries?: WalletEntryView[];
}

const MAX_DELAY_MS = 30_000;

function entries(contents: WalletContents): WalletEntryView[] {
  return Object.values(contents.credentials).map((c) => {
    const expiry = latestExpiry(c);
    return {
    id: c.id,
    issuer: c.issuer,
    prefixes: c.prefixes,
    scopes: c.scopes,
    ...(expiry ? { accessTokenExpiresAt: new Date(expiry).toISOString() } : {}),
    hasRefreshToken: Boolean(c.refreshToken),
    obtainedBy: c.obtainedBy,
    dead: c.dead,
    };
  });
}

export interface WalletSessionOptions {
  path: string;
  baseDelayMs?: number;
}

/** What the session tells: `open` is awaited before open() returns (tokens get sealed first); `close` on request, at the lifetime's end, at shutdown. */
export interface WalletSessionEvents {
  open(key: WalletKey, contents: WalletContents): Promise<void>;
  close(): void;
}

/**
 * The agent's hold on the wallet: the derived key lives only here, in memory, while the wallet
 * is open; close, the lifetime's end and shutdown forget it. Wrong passwords cost a growing delay.
 */
export function createWalletSession(opts: WalletSessionOptions) {
  const baseDelay = opts.baseDelayMs ?? 250;
  let key: WalletKey | undefined;
  let until: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const listeners: { [E in keyof WalletSessionEvents]: WalletSessionEvents[E][] } = { open: [], close: [] };

  function forget(): void {
    if (key) for (const fn of listeners.close) fn();
    clearTimeout(timer);
    timer = undefined;
    key?.key.fill(0);
    key = undefined;
    until = undefined;
  }

  return {
    async open(password: string, lifetimeMs?: number): Promise<void> {
      let unlocked;
      try {
        unlocked = await unlockWallet(opts.path, password);
      } catch (e) {
        if (e instanceof PetrelError && e.code === 'WALLET_BAD_PASSWORD') {
          failures++;
          await new Promise((r) => setTimeout(r, Math.min(MAX_DELAY_MS, baseDelay * 2 ** (failures - 1))));
        }
        throw e;
      }
      failures = 0;
      // Opening again (warm, import) keeps the lifetime set before unless a new one is given.
      const keepUntil = lifetimeMs ? undefined : until;
      forget();
      key = unlocked.key;
      const closeAt = lifetimeMs ? Date.now() + lifetimeMs : keepUntil;
      if (closeAt) {
        until = closeAt;
        timer = setTimeout(forget, Math.max(0, closeAt - Date.now()));
        timer.unref();
      }
      for (const fn of listeners.open) await fn(unlocked.key, unlocked.contents);
    },

    /** Subscribes to the session's opening or closing; returns the unsubscribe. */
    on<E extends keyof WalletSessionEvents>(event: E, fn: WalletSessionEvents[E]): () => void {
      (listeners[event] as WalletSessionEvents[E][]).push(fn);
      return () => {
        const list = listeners[event] as WalletSessionEvents[E][];
        list.splice(list.indexOf(fn), 1);
      };
    },

    /** The open wallet's key, or undefined while closed. */
    openKey: (): WalletKey | undefined => key,

    close: forget,

    isOpen: (): boolean => key !== undefined,

    /** The key of the open wallet, for reads and writes through src/wallet/file.ts. */
    key(): WalletKey {
      if (!key) throw new PetrelError('WALLET_CLOSED', 'the wallet is closed', { hint: 'open it with `petrel wallet open`' });
      return key;
    },

    async status(): Promise<WalletStatus> {
      const base = { path: opts.path, initialized: walletPresent(opts.path), open: key !== undefined };
      if (!key) return base;
      return { ...base, ...(until ? { until: new Date(until).toISOString() } : {}), entries: entries(await readWallet(opts.path, key)) };
    },
  };
}

export type WalletSession = ReturnType<typeof createWalletSession>;
