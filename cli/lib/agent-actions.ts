import { PetrelError } from '../../src/errors.js';
import { agentClient, ensureAgent, stopAgent } from './agent-process.js';
import { EXIT, print, printJson } from './output.js';

type Opts = { json?: boolean };

export async function start(opts: Opts): Promise<number> {
  const client = agentClient();
  try {
    const { health, started } = await ensureAgent(client);
    if (opts.json) printJson({ started, pid: health.pid, socket: health.socket });
    else print(started ? `agent started (pid ${health.pid}) on ${health.socket}` : `agent already running (pid ${health.pid}) on ${health.socket}`);
    return EXIT.ok;
  } finally {
    await client.close();
  }
}

export async function stop(opts: Opts): Promise<number> {
  const client = agentClient();
  try {
    const stopped = await stopAgent(client);
    if (opts.json) printJson({ stopped });
    else print(stopped ? 'agent stopped' : 'no agent was running');
    return EXIT.ok;
  } finally {
    await client.close();
  }
}

export async function status(opts: Opts): Promise<number> {
  const client = agentClient(5_000);
  try {
    const h = await client.health();
    if (opts.json) {
      printJson(h);
      return EXIT.ok;
    }
    print(`agent ${h.version} running, pid ${h.pid}${h.socketActivated ? ' (socket-activated)' : ''}`);
    print(`  socket:   ${h.socket}`);
    print(`  database: ${h.database}`);
    print(`  since:    ${h.startedAt}`);
    print(`  queue:    ${h.counts.running} running, ${h.counts.queued} queued, ${h.counts.waiting} waiting`);
    const storage = {
      'wallet-sealed': 'job tokens are sealed with the open wallet in the database',
      'database-plaintext': 'job tokens are kept unencrypted in the database (mode 0600), as protected as the token files they came from; `petrel wallet init` seals them',
      'agent-memory': "the wallet is closed: new job tokens are held in the agent's memory only (`petrel wallet open` seals them)",
    }[h.tokenStorage];
    print(`  tokens:   ${storage}`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof PetrelError && e.code === 'AGENT_UNREACHABLE') {
      throw new PetrelError('AGENT_UNREACHABLE', 'no agent is running', { hint: 'start one with `petrel agent start`' });
    }
    throw e;
  } finally {
    await client.close();
  }
}
