import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { PetrelError } from '../src/errors.js';
import { checkSocket } from '../src/socket-trust.js';

/** Does something answer on this Unix socket? */
export function socketAnswers(path: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

/**
 * Makes the socket path ours to bind: the directory exists with mode 0700, a stale socket is
 * removed, and a live one means another agent runs.
 */
export async function claimSocketPath(path: string): Promise<void> {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new PetrelError('AGENT_START_FAILED', `cannot create the socket directory ${dir}: ${(e as Error).message}`, {
      hint: 'set PETREL_SOCKET (or XDG_RUNTIME_DIR) to a place you own',
      cause: e,
    });
  }
  // Not tightened here: a directory others could write to may already hold their socket or link.
  checkSocket(path);
  let exists = true;
  try {
    lstatSync(path);
  } catch {
    exists = false;
  }
  if (!exists) return;
  if (await socketAnswers(path)) {
    throw new PetrelError('AGENT_ALREADY_RUNNING', `an agent is already running on ${path}`, {
      hint: 'use it (`petrel agent status`), or stop it with `petrel agent stop`',
    });
  }
  unlinkSync(path);
}

/** The listening socket systemd handed over (LISTEN_FDS), if any: it is always fd 3. */
export function activationFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (env.LISTEN_PID && Number(env.LISTEN_PID) !== process.pid) return undefined;
  return Number(env.LISTEN_FDS) >= 1 ? 3 : undefined;
}
