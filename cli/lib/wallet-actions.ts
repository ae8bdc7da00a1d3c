import type { WalletStatus } from '../../src/api/index.js';
import { PetrelError } from '../../src/errors.js';
import { resolvePaths } from '../../src/paths.js';
import { initWallet, rekeyWallet, unlockWallet, updateWallet } from '../../src/wallet/index.js';
import { ensureAgent, withAgentClient } from './agent-process.js';
import { EXIT, print, printJson } from './output.js';
import { parseLifetime, readPassword, type PasswordOptions } from './password.js';

type Opts = PasswordOptions & { json?: boolean; lifetime?: string };

/** The agent's view of the wallet, or undefined when no agent runs. */
async function agentWallet(): Promise<WalletStatus | undefined> {
  return withAgentClient((c) => c.wallet()).catch((e: unknown) => {
    if (e instanceof PetrelError && e.code === 'AGENT_UNREACHABLE') return undefined;
    throw e;
  });
}

function show(status: WalletStatus, json: boolean): number {
  if (json) printJson(status);
  else if (!status.initialized) print(`no wallet at ${status.path} (create one with \`petrel wallet init\`)`);
  else print(`wallet ${status.path}: ${status.open ? `open${status.until ? ` until ${status.until}` : ''}` : 'closed'}`);
  return EXIT.ok;
}

export async function init(_: unknown, opts: Opts): Promise<number> {
  const path = resolvePaths().walletFile;
  const password = await readPassword(opts, 'new wallet password: ', { confirm: true });
  await initWallet(path, password);
  const running = await agentWallet();
  const status = running ? await withAgentClient((c) => c.openWallet({ password })) : { path, initialized: true, open: false };
  if (opts.json) printJson(status);
  else print(`wallet created at ${path}${running ? ' and opened in the agent' : ''}`);
  return EXIT.ok;
}

export async function open(_: unknown, opts: Opts): Promise<number> {
  const lifetime = opts.lifetime ? parseLifetime(opts.lifetime) : undefined;
  const password = await readPassword(opts, 'wallet password: ');
  const status = await withAgentClient(async (c) => {
    await ensureAgent(c);
    return c.openWallet({ password, ...(lifetime ? { lifetime } : {}) });
  });
  return show(status, Boolean(opts.json));
}

export async function close(_: unknown, opts: Opts): Promise<number> {
  return show(await withAgentClient((c) => c.closeWallet()), Boolean(opts.json));
}

export async function status(_: unknown, opts: Opts): Promise<number> {
  const path = resolvePaths().walletFile;
  const running = await agentWallet();
  if (running) return show(running, Boolean(opts.json));
  const { existsSync } = await import('node:fs');
  return show({ path, initialized: existsSync(path), open: false }, Boolean(opts.json));
}

export async function list(_: unknown, opts: Opts): Promise<number> {
  const s = await withAgentClient((c) => c.wallet());
  if (!s.open) throw new PetrelError('WALLET_CLOSED', 'the wallet is closed in the agent', { hint: 'open it with `petrel wallet open`' });
  if (opts.json) printJson(s.entries ?? []);
  else if (!s.entries?.length) print('the wallet holds no credentials');
  else {
    for (const e of s.entries) {
      const expiry = e.accessTokenExpiresAt ? `access token until ${e.accessTokenExpiresAt}` : 'no access token';
      print(`${e.id}  ${e.issuer}  ${e.prefixes.join(',') || '-'}  ${e.scopes.join(' ') || '-'}  ${expiry}${e.hasRefreshToken ? ', refreshable' : ''}${e.dead ? '  DEAD: warm it again' : ''}`);
    }
  }
  return EXIT.ok;
}

export async function passwd(_: unknown, opts: Opts): Promise<number> {
  const path = resolvePaths().walletFile;
  const old = await readPassword(opts, 'current wallet password: ');
  const next = await readPassword(opts, 'new wallet password: ', { confirm: true });
  await rekeyWallet(path, old, next);
  // An agent holding the old key must take the new one, or its writes would fail.
  const running = await agentWallet();
  if (running?.open) await withAgentClient((c) => c.openWallet({ password: next }));
  if (opts.json) printJson({ changed: true });
  else print('wallet password changed');
  return EXIT.ok;
}

export async function remove(entry: string | undefined, opts: Opts): Promise<number> {
  const path = resolvePaths().walletFile;
  const { key } = await unlockWallet(path, await readPassword(opts, 'wallet password: '));
  let found = false;
  await updateWallet(path, key, (c) => {
    found = entry !== undefined && entry in c.credentials;
    if (found) delete c.credentials[entry as string];
  });
  if (!found) throw new PetrelError('WALLET_ENTRY_NOT_FOUND', `the wallet has no entry ${entry}`, { hint: 'see `petrel wallet list`' });
  if (opts.json) printJson({ removed: entry });
  else print(`removed ${entry}`);
  return EXIT.ok;
}
