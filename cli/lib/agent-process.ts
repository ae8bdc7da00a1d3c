import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createAgentClient, type AgentClient } from '../../src/api/index.js';
import type { Health } from '../../src/api/index.js';
import { PetrelError } from '../../src/errors.js';
import { resolvePaths } from '../../src/paths.js';

/** The compiled `petrel` entry point, as the detached agent and the systemd unit run it. */
export const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const START_TIMEOUT_MS = 15_000;

/**
 * Node options for the agent process. A 1 MiB young generation (16 MiB by default) keeps the
 * daemon's resident memory lower (86 rather than 98 MB idle; 196 rather than 220 MB at the peak of
 * taking a 100,000-transfer job). A 32 MB initial old-generation limit: the agent's heap is above
 * the size at which V8 starts full collections when buffers come and go, and the 16 KiB buffers a
 * download reads (64 KiB an upload) set one off every few MB: 17 mark-compacts in a 256 MiB PUT,
 * none with this (the agent's CPU for 256 MiB: PUT 1.05 -> 0.53 s, GET 1.20 -> 0.65 s).
 */
export const AGENT_NODE_OPTIONS = ['--max-semi-space-size=1', '--initial-old-space-size=32'] as const;

export function agentClient(timeoutMs?: number): AgentClient {
  return createAgentClient({ socket: resolvePaths().socket, ...(timeoutMs ? { timeoutMs } : {}) });
}

/** Runs `fn` with a client of the agent, closing it afterwards. */
export async function withAgentClient<T>(fn: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = agentClient();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

async function healthOrUndefined(client: AgentClient): Promise<Health | undefined> {
  try {
    return await client.health();
  } catch (e) {
    if (e instanceof PetrelError && e.code === 'AGENT_UNREACHABLE') return undefined;
    throw e;
  }
}

function lastLogLines(file: string, n = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** The running agent, started detached first when none answers (as `petrel agent start`). */
export async function ensureAgent(client: AgentClient): Promise<{ health: Health; started: boolean }> {
  const running = await healthOrUndefined(client);
  if (running) return { health: running, started: false };

  const paths = resolvePaths();
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const log = openSync(paths.logFile, 'a', 0o600);
  let exited: number | null | undefined;
  try {
    const child = spawn(process.execPath, [...AGENT_NODE_OPTIONS, CLI_MAIN, 'agent', 'run', '--log-file', paths.logFile], {
      detached: true,
      stdio: ['ignore', log, log],
      // The agent takes tokens per job; one found in this shell must not live on in the daemon.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'BEARER_TOKEN' && k !== 'BEARER_TOKEN_FILE')),
    });
    child.once('exit', (code) => (exited = code));
    child.unref();
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const health = await healthOrUndefined(client);
    if (health) return { health, started: true };
    if (exited !== undefined) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = lastLogLines(paths.logFile);
  throw new PetrelError(
    'AGENT_START_FAILED',
    exited !== undefined ? `the agent exited at start (code ${exited})${tail ? `; its log ends:\n${tail}` : ''}` : `the agent did not answer on ${paths.socket} within ${START_TIMEOUT_MS / 1000} s`,
    { hint: `see ${paths.logFile}, or run \`petrel agent run\` to see it fail in the foreground` },
  );
}

/** Asks the agent to stop and waits until its socket is gone. False when none was running. */
export async function stopAgent(client: AgentClient, timeoutMs = 20_000): Promise<boolean> {
  try {
    await client.shutdown();
  } catch (e) {
    if (e instanceof PetrelError && e.code === 'AGENT_UNREACHABLE') return false;
    throw e;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await healthOrUndefined(client))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new PetrelError('AGENT_UNREACHABLE', `the agent did not stop within ${timeoutMs / 1000} s`, { hint: 'see `petrel agent status`; kill it with SIGTERM' });
}
