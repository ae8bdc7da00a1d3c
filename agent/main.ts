import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Health } from '../src/api/index.js';
import { loadConfig } from '../src/config.js';
import { PetrelError } from '../src/errors.js';
import { createJobService } from '../src/jobs/index.js';
import { createLogger, type Logger } from '../src/log.js';
import { packageVersion } from '../src/package-root.js';
import { resolvePaths } from '../src/paths.js';
import { createAgentEngine, createConfiguredRouter, locate } from '../src/federation/index.js';
import { createTokenService } from '../src/auth/index.js';
import { createWalletSession } from '../src/wallet/index.js';
import { createApp } from './app.js';
import { closeSilentConnections, SOCKET_SERVER_OPTIONS } from './connections.js';
import { activationFd, claimSocketPath } from './socket.js';

export interface AgentOptions {
  /** Write the log here instead of stderr (a detached agent). */
  logFile?: string | undefined;
}

function listen(server: Server, target: { fd: number } | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Runs the agent in this process until SIGTERM, SIGINT or a shutdown request. */
export async function runAgent(opts: AgentOptions = {}): Promise<void> {
  process.umask(0o077);
  const paths = resolvePaths();
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const stream = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a', mode: 0o600 }) : process.stderr;
  const logger: Logger = createLogger({ stream, level: process.env.PETREL_LOG_LEVEL === 'debug' ? 'debug' : 'info', base: { pid: process.pid } });

  const config = await loadConfig(paths.configFile);
  const fd = activationFd();
  if (fd === undefined) await claimSocketPath(paths.socket);

  // Built in the order they depend on each other; the wallet's events then tie them together.
  const wallet = createWalletSession({ path: paths.walletFile });
  const tokens = createTokenService({ walletPath: paths.walletFile, config, logger, walletKey: wallet.openKey });
  const router = createConfiguredRouter(config);
  const jobs = createJobService({
    database: paths.database,
    engine: createAgentEngine(config, router),
    locate: (url, op) => locate(router, url, op),
    config,
    logger,
    runId: randomUUID(),
    tokensFor: tokens.tokensFor,
    stageTokenFor: tokens.stageTokenFor,
    protectToken: tokens.protectToken,
  });
  wallet.on('open', async (key, contents) => {
    try {
      await tokens.walletOpened(key, contents, jobs.resealTokens);
    } finally {
      // Whatever waited may go on now, even if sealing failed (the error reaches `wallet open`).
      jobs.resumeWaiting();
    }
  });
  wallet.on('close', tokens.walletClosed);
  const startedAt = new Date().toISOString();
  const version = packageVersion();
  // A shutdown request (POST /v1/shutdown) aborts this; the stop itself is wired once the server exists.
  const shutdownRequest = new AbortController();

  const health = (): Health => ({
    ok: true,
    version,
    pid: process.pid,
    socket: paths.socket,
    database: paths.database,
    startedAt,
    socketActivated: fd !== undefined,
    counts: jobs.queueCounts(),
    tokenStorage: tokens.tokenStorage(),
  });

  const app = createApp({ jobs, wallet, tokens, health, shutdown: () => shutdownRequest.abort('shutdown request'), logger, maxRequestBytes: config.maxRequestBytes });
  const server = createAdaptorServer({ fetch: app.fetch, serverOptions: SOCKET_SERVER_OPTIONS }) as Server;
  closeSilentConnections(server);
  try {
    if (fd !== undefined) {
      await listen(server, { fd });
    } else {
      // Born 0600: no window in which another user could connect.
      const old = process.umask(0o177);
      try {
        await listen(server, paths.socket);
      } finally {
        process.umask(old);
      }
    }
  } catch (e) {
    await jobs.stop();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new PetrelError('AGENT_ALREADY_RUNNING', `an agent is already running on ${paths.socket}`, { hint: 'use it, or stop it with `petrel agent stop`' });
    }
    throw new PetrelError('AGENT_START_FAILED', `cannot listen on ${paths.socket}: ${(e as Error).message}`, { cause: e });
  }
  let stopping: Promise<void> | undefined;
  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info('agent stopping', { why });
      server.close();
      await tokens.stop();
      await jobs.stop();
      wallet.close();
      server.closeAllConnections();
      if (fd === undefined) {
        try {
          unlinkSync(paths.socket);
        } catch {
          // already gone
        }
      }
      logger.info('agent stopped');
    })();
    return stopping;
  };

  shutdownRequest.signal.addEventListener('abort', () => void shutdown(String(shutdownRequest.signal.reason)));
  jobs.start();
  tokens.start();
  // What waited in an earlier run (e.g. for a config since changed) tries once more.
  jobs.resumeWaiting();
  logger.info('agent started', { version, socket: paths.socket, database: paths.database, socketActivated: fd !== undefined });

  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => void shutdown(sig).then(resolve);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    server.once('close', () => void (stopping ?? shutdown('server closed')).then(resolve));
  });
  if (stream !== process.stderr) await new Promise<void>((r) => stream.end(() => r()));
}
