import { randomBytes } from 'node:crypto';
import type { AgentConfig } from '../config.js';
import { caFileFromEnv } from '../config.js';
import type { TokenSlot } from '../domain.js';
import type { Logger } from '../log.js';
import type { TransferTask } from '../transfer/index.js';
import { updateWallet, walletPresent, type WalletContents, type WalletKey } from '../wallet/index.js';
import { createTokenBroker } from './broker.js';
import { createJobTokenVault, vaultKey } from './job-tokens.js';
import { createOidc } from './oidc.js';
import { createRefresher } from './refresher.js';
import { brokerSource, createTokenResolver, tokenNeeds, tokensForTask } from './resolver.js';

export interface TokenServiceDeps {
  walletPath: string;
  config: AgentConfig;
  logger: Logger;
  /** The open wallet's key, or undefined. */
  walletKey(): WalletKey | undefined;
}

/** Rewrites the job token columns where `reseal` gives a new value; returns how many jobs changed. */
export type ResealTokens = (reseal: (slot: TokenSlot, value: string) => string | undefined) => number;

/**
 * The agent's token machinery: the broker that picks or renews a token per transfer, the vault
 * that keeps explicit job tokens (sealed with the wallet once it opens), and the background
 * refresher. It follows the wallet through walletOpened and walletClosed.
 */
export function createTokenService(deps: TokenServiceDeps) {
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

  async function sealJobTokens(key: WalletKey, contents: WalletContents, reseal: ResealTokens): Promise<void> {
    let sealKey = contents.sealKey;
    if (!sealKey) {
      const fresh = randomBytes(32).toString('base64');
      const updated = await updateWallet(deps.walletPath, key, (c) => {
        c.sealKey ??= fresh;
      });
      sealKey = updated.sealKey as string;
    }
    vault.setSealKey(Buffer.from(sealKey, 'base64'));
    const sealed = reseal((slot, value) => vault.resealed(vaultKey(slot), value));
    if (sealed) deps.logger.info('sealed job tokens with the wallet', { jobs: sealed });
  }

  return {
    broker,
    refresher,

    async tokensFor(task: TransferTask): Promise<Pick<TransferTask, 'token' | 'sourceToken'>> {
      const jobId = task.jobId;
      const read = (column: TokenSlot['column'], value: string | null | undefined) => (jobId ? vault.read(vaultKey({ jobId, column }), value ?? null) : (value ?? null));
      return tokensForTask(task, { token: read('token', task.token), sourceToken: read('sourceToken', task.sourceToken) }, resolver);
    },

    /**
     * The token for recalling a transfer's source from tape (storage.stage): the job's explicit
     * token, else the wallet's, with the credential it came from (the stager never puts two
     * credentials in one request).
     */
    async stageTokenFor(t: Pick<TransferTask, 'kind' | 'source' | 'destination' | 'token' | 'sourceToken'> & { jobId: string }): Promise<{ token: string | null; credentialId?: string | undefined }> {
      const twoSided = tokenNeeds(t).length > 1;
      const column: TokenSlot['column'] = twoSided && t.sourceToken ? 'sourceToken' : 'token';
      const explicit = vault.read(vaultKey({ jobId: t.jobId, column }), (column === 'sourceToken' ? t.sourceToken : t.token) ?? null);
      if (explicit) return { token: explicit };
      const got = await resolver.resolve({ url: new URL(t.source), operation: 'stage' });
      return got ? { token: got.token, credentialId: got.credentialId ?? got.source } : { token: null };
    },

    protectToken: (slot: TokenSlot, token: string): string => vault.columnFor(vaultKey(slot), token),

    /** Where explicit tokens go right now (health, `petrel agent status`). */
    tokenStorage(): 'wallet-sealed' | 'database-plaintext' | 'agent-memory' {
      if (vault.isOpen()) return 'wallet-sealed';
      return initialized() ? 'agent-memory' : 'database-plaintext';
    },

    /** The wallet opened: renewals start afresh and job tokens are sealed with it (`reseal` rewrites their columns). */
    async walletOpened(key: WalletKey, contents: WalletContents, reseal: ResealTokens): Promise<void> {
      broker.forget();
      await sealJobTokens(key, contents, reseal);
    },

    walletClosed(): void {
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
}

export type TokenService = ReturnType<typeof createTokenService>;
