// The wallet as the agent holds it, and the `petrel wallet` commands that drive it.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { createWalletSession, initWallet, unlockWallet, updateWallet } from '../../src/wallet/index.js';
import { makeHome, petrel, startAgent } from '../helpers/agent.js';

const tb = inject('testbed');
const FAST_KDF = { N: 2 ** 12, r: 8, p: 1 };

describe('wallet session', () => {
  it('makes each wrong password wait longer, and a right one resets the delay', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'petrel-ws-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'wallet.json');
    await initWallet(path, 'right', FAST_KDF);
    const session = createWalletSession({ path, baseDelayMs: 200 });
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const e = (await session.open('wrong').catch((x: unknown) => x)) as PetrelError;
      took.push(performance.now() - t0);
      expect(e.code).toBe('WALLET_BAD_PASSWORD');
    }
    expect(took[0]).toBeGreaterThanOrEqual(190);
    expect(took[2]).toBeGreaterThanOrEqual(790);
    await session.open('right');
    expect(session.isOpen()).toBe(true);
    session.close();
    expect(session.isOpen()).toBe(false);
    expect(() => session.key()).toThrow(/closed/);
  });

  it('closes itself when its lifetime ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'petrel-ws-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'wallet.json');
    await initWallet(path, 'pw', FAST_KDF);
    const session = createWalletSession({ path });
    await session.open('pw', 300);
    expect((await session.status()).until).toBeDefined();
    await expect.poll(() => session.isOpen(), { timeout: 3000 }).toBe(false);
  });
});

describe('petrel wallet', () => {
  it('init, open in the agent, list without secrets, close', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    const walletFile = join(h.dir, 'config', 'petrel', 'wallet.json');

    const init = await petrel(h, ['wallet', 'init', '--password-stdin'], { input: 'hunter2-long\n' });
    expect(init.code, init.stderr).toBe(0);
    expect((await stat(walletFile)).mode & 0o777).toBe(0o600);
    const { key } = await unlockWallet(walletFile, 'hunter2-long');
    await updateWallet(walletFile, key, (c) => {
      c.credentials.cern = { id: 'cern', issuer: 'https://issuer.example.org', prefixes: ['https://eos.example.org/eos'], scopes: ['storage.read:/eos'], refreshToken: 'RT-SECRET-0001', basePath: '/', accessTokens: [], obtainedBy: 'import', dead: false, updatedAt: Date.now() };
    });

    const agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    expect(JSON.parse((await petrel(h, ['wallet', 'status', '--json'])).stdout)).toMatchObject({ initialized: true, open: false });

    const bad = await petrel(h, ['wallet', 'open', '--password-stdin'], { input: 'wrong\n' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('wrong wallet password');

    const open = await petrel(h, ['wallet', 'open', '--password-stdin', '--lifetime', '8h', '--json'], { input: 'hunter2-long\n' });
    expect(open.code, open.stderr).toBe(0);
    const status = JSON.parse(open.stdout);
    expect(status.open).toBe(true);
    expect(Date.parse(status.until) - Date.now()).toBeGreaterThan(7.9 * 3600_000);

    const list = await petrel(h, ['wallet', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'cern', hasRefreshToken: true, scopes: ['storage.read:/eos'] })]);
    expect(list.stdout).not.toContain('RT-SECRET');

    expect(JSON.parse((await petrel(h, ['wallet', 'close', '--json'])).stdout).open).toBe(false);
    const closed = await petrel(h, ['wallet', 'list']);
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain('petrel wallet open');

    const log = agent.log();
    expect(log).not.toContain('hunter2');
    expect(log).not.toContain('RT-SECRET');
  });

  it('passwd changes the password; remove takes one entry out', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    const walletFile = join(h.dir, 'config', 'petrel', 'wallet.json');
    expect((await petrel(h, ['wallet', 'init', '--password-stdin'], { input: 'first\n' })).code).toBe(0);
    const { key } = await unlockWallet(walletFile, 'first');
    await updateWallet(walletFile, key, (c) => {
      for (const id of ['a', 'b']) c.credentials[id] = { id, issuer: 'https://i.example.org', prefixes: [], scopes: [], basePath: '/', accessTokens: [], obtainedBy: 'import', dead: false, updatedAt: Date.now() };
    });

    const pw = await petrel(h, ['wallet', 'passwd', '--password-stdin'], { input: 'first\nsecond\n' });
    expect(pw.code, pw.stderr).toBe(0);
    expect(((await unlockWallet(walletFile, 'first').catch((e: unknown) => e)) as PetrelError).code).toBe('WALLET_BAD_PASSWORD');

    const rm1 = await petrel(h, ['wallet', 'remove', 'a', '--password-stdin'], { input: 'second\n' });
    expect(rm1.code, rm1.stderr).toBe(0);
    expect(Object.keys((await unlockWallet(walletFile, 'second')).contents.credentials)).toEqual(['b']);
    const rm2 = await petrel(h, ['wallet', 'remove', 'zzz', '--password-stdin'], { input: 'second\n' });
    expect(rm2.code).toBe(1);
    expect(rm2.stderr).toContain('no entry zzz');
    expect(await readFile(walletFile, 'utf8')).not.toContain('second');
  });

  it('refuses to read a password from nowhere', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    const res = await petrel(h, ['wallet', 'init']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--password-stdin');
  });
});
