// Real agents and CLI runs for tests: a temp XDG home with a short socket path, the compiled
// CLI (dist/cli/main.js, built by `npm test`) run as child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAgentClient, type AgentClient } from '../../src/api/client.js';
import type { JobView } from '../../src/api/schemas.js';
import type { TestbedInfo } from '../testbed/index.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

export interface Home {
  dir: string;
  socket: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

/** A private XDG home: config (written as config.json), state and a socket under /tmp. */
export async function makeHome(tb: TestbedInfo, config: Record<string, unknown> = {}): Promise<Home> {
  const dir = await mkdtemp('/tmp/pt-');
  const configDir = join(dir, 'config', 'petrel');
  await mkdir(configDir, { recursive: true });
  // XRootD 5.5 sometimes leaves a digest request unanswered on a busy disk (testbed.md): a short
  // idle timeout makes that a quick transient retry rather than a test that runs out of time.
  await writeFile(join(configDir, 'config.json'), JSON.stringify({ idleTimeoutMs: 10_000, ...config }));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
    PETREL_CA_FILE: tb.caFile,
  };
  return {
    dir,
    socket: join(dir, 'run', 'petrel', 'agent.sock'),
    stateDir: join(dir, 'state', 'petrel'),
    env,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `petrel ARGS` to its end. */
export function petrel(home: Home, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...home.env, ...opts.env }, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

export interface RunningAgent {
  child: ChildProcess;
  client: AgentClient;
  log(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** `petrel agent run` as a child process, ready once its socket answers. */
export async function startAgent(home: Home): Promise<RunningAgent> {
  const child = spawn(process.execPath, [CLI, 'agent', 'run'], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const client = createAgentClient({ socket: home.socket, timeoutMs: 10_000 });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await client.health();
      break;
    } catch (e) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent did not start: ${log}`, { cause: e });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    child,
    client,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      await client.close();
      return code;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
      await client.close();
    },
  };
}

/** Polls the agent until `pred` holds for the job, returning that view. */
export async function waitForJob(client: AgentClient, id: string, pred: (j: JobView) => boolean, timeoutMs = 120_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.job(id, { transferLimit: 1 });
    if (pred(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const finished = (j: JobView): boolean => j.finishedAt !== undefined;
