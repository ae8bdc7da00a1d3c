import { randomBytes } from 'node:crypto';
import { createTokenBroker } from '../src/auth/broker.js';
import { createJobTokenVault } from '../src/auth/job-tokens.js';
import { createOidc } from '../src/auth/oidc.js';
import { createRefresher } from '../src/auth/refresher.js';
import { brokerSource, createTokenResolver, tokensForTask } from '../src/auth/resolver.js';
import { caFileFromEnv, type AgentConfig } from '../src/config.js';
import type { Logger } from '../src/log.js';
import { sourceTokenKey } from '../src/jobs/store.js';
import type { TransferTask } from '../src/transfer/task.js';
import type { WalletContents } from '../src/wallet/contents.js';
import type { WalletKey } from '../src/wallet/envelope.js';
import { updateWallet, walletPresent } from '../src/wallet/file.js';

export interface AgentTokensDeps {
  walletPath: string;
  config: AgentConfig;
  logger: Logger;
  /** The open wallet's key, or undefined. */
  walletKey(): WalletKey | undefined;
  /** Waiting transfers should try again. */
  resumeWaiting(): void;
  /** Rewrites job token columns (sealing them once the wallet opens). */
  resealTokens(reseal: (jobId: string, column: string) => string | undefined): number;
}

/**
 * The agent's token machinery: the broker that picks or renews a token per transfer, the vault
 * that keeps explicit job tokens, and the background refresher, tied to the wallet's opening
 * and closing.
 */
export function createAgentTokens(deps: AgentTokensDeps) {
  const initialized = () => walletPresent(deps.walletPath);
  const oidc = createOidc({ caFile: caFileFromEnv() });
  const broker = createTokenBroker({
    wallet: { path: deps.walletPath, key: deps.walletKey, initialized },
    oidc,
    issuers: deps.config.issuers,
    minValidityMs: deps.config.tokens.minValidityMs,
    logger: deps.logger,
  });
  const vault = createJobTokenVault({ walletInitialized: initialized });
  // A transfer's token: its job's explicit one, else the wallet's (a transfer that needs the user waits).
  const resolver = createTokenResolver([brokerSource(broker)]);
  const refresher = createRefresher({
    broker,
    schedule: deps.config.tokens.refreshSchedule,
    windowMs: deps.config.tokens.refreshWindowMs,
    maxBackoffMs: deps.config.tokens.maxRefreshBackoffMs,
    logger: deps.logger,
    // Renewals clear no waiting reason (needed, dead, closed): those resume when the wallet opens.
    onRenewed: () => undefined,
  });

  return {
    broker,
    refresher,

    async tokensFor(task: TransferTask): Promise<Pick<TransferTask, 'token' | 'sourceToken'>> {
      const read = (key: string, column: string | null | undefined) => (task.jobId ? vault.read(key, column ?? null) : (column ?? null));
      const explicit = { token: read(task.jobId ?? '', task.token), sourceToken: read(sourceTokenKey(task.jobId ?? ''), task.sourceToken) };
      return tokensForTask(task, explicit, resolver);
    },

    protectToken: (jobId: string, token: string): string => vault.columnFor(jobId, token),

    /** Where explicit tokens go right now (health, `petrel agent status`). */
    tokenStorage(): 'wallet-sealed' | 'database-plaintext' | 'agent-memory' {
      if (vault.isOpen()) return 'wallet-sealed';
      return initialized() ? 'agent-memory' : 'database-plaintext';
    },

    async onWalletOpen(key: WalletKey, contents: WalletContents): Promise<void> {
      broker.forget();
      try {
        await sealJobTokens(key, contents);
      } finally {
        // Whatever waited may go on now, even if sealing failed (the error reaches `wallet open`).
        deps.resumeWaiting();
      }
    },

    onWalletClose(): void {
      vault.setSealKey(undefined);
      broker.forget();
    },

    start(): void {
      refresher.start();
    },

    async stop(): Promise<void> {
      await refresher.stop();
      await oidc.close();
    },
  };

  async function sealJobTokens(key: WalletKey, contents: WalletContents): Promise<void> {
    let sealKey = contents.sealKey;
    if (!sealKey) {
      const fresh = randomBytes(32).toString('base64');
      const updated = await updateWallet(deps.walletPath, key, (c) => {
        c.sealKey ??= fresh;
      });
      sealKey = updated.sealKey as string;
    }
    vault.setSealKey(Buffer.from(sealKey, 'base64'));
    const sealed = deps.resealTokens((jobId, column) => vault.resealed(jobId, column));
    if (sealed) deps.logger.info('sealed job tokens with the wallet', { jobs: sealed });
  }
}

export type AgentTokens = ReturnType<typeof createAgentTokens>;
