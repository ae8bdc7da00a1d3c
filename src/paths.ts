import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PetrelPaths {
  socket: string;
  stateDir: string;
  configDir: string;
  database: string;
  logFile: string;
  configFile: string;
  walletFile: string;
}

type Env = Record<string, string | undefined>;

function uid(): number {
  return process.getuid?.() ?? userInfo().uid;
}

/** The agent's socket: $PETREL_SOCKET, else $XDG_RUNTIME_DIR/petrel/agent.sock, else /tmp/petrel-<uid>/agent.sock. */
export function socketPath(env: Env = process.env): string {
  if (env.PETREL_SOCKET) return env.PETREL_SOCKET;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'petrel', 'agent.sock');
  return join(tmpdir(), `petrel-${uid()}`, 'agent.sock');
}

export function resolvePaths(env: Env = process.env): PetrelPaths {
  const home = env.HOME ?? homedir();
  const stateDir = join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'petrel');
  const configDir = join(env.XDG_CONFIG_HOME || join(home, '.config'), 'petrel');
  return {
    socket: socketPath(env),
    stateDir,
    configDir,
    database: join(stateDir, 'agent.db'),
    logFile: join(stateDir, 'agent.log'),
    configFile: join(configDir, 'config.json'),
    walletFile: join(configDir, 'wallet.json'),
  };
}
