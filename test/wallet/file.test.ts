// The wallet file: sealed at rest, one locked writer at a time, never left unreadable.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { initWallet, readWallet, rekeyWallet, unlockWallet, updateWallet } from '../../src/wallet/file.js';

// A cheap KDF keeps the tests fast; the cost lives in the file, so every reader uses the same.
const FAST_KDF = { N: 2 ** 12, r: 8, p: 1 };
const DIST_FILE = resolve(import.meta.dirname, '../../dist/src/wallet/file.js');

async function walletPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-wallet-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'config', 'wallet.json');
}

const cred = (id: string, refreshToken: string) => ({
  id,
  issuer: 'https://issuer.example.org',
  prefixes: ['https://storage.example.org/data'],
  scopes: ['storage.read:/data'],
  refreshToken,
  basePath: '/', accessTokens: [], obtainedBy: 'import' as const,
  dead: false,
  updatedAt: Date.now(),
});

async function failure(p: Promise<unknown>): Promise<PetrelError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as PetrelError,
  );
}

/** A child process that upserts `count` entries named `${prefix}N`, through the compiled library. */
function writer(path: string, password: string, prefix: string, count: number): ReturnType<typeof spawn> {
  const code = `
    const { unlockWallet, updateWallet } = await import(${JSON.stringify(DIST_FILE)});
    const { key } = await unlockWallet(process.argv[1], process.argv[2]);
    for (let i = 0; i < Number(process.argv[4]); i++) {
      const id = process.argv[3] + i;
      await updateWallet(process.argv[1], key, (c) => { c.credentials[id] = { id, issuer: 'https://i.example', prefixes: [], scopes: [], refreshToken: 'rt-' + id, basePath: '/', accessTokens: [], obtainedBy: 'import', dead: false, updatedAt: Date.now() }; });
      if (i === 0) console.log('writing');
    }`;
  return spawn(process.execPath, ['--input-type=module', '-e', code, path, password, prefix, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('wallet file', () => {
  it('is created 0600 and holds no secret in plaintext', async () => {
    const path = await walletPath();
    const key = await initWallet(path, 'correct horse', FAST_KDF);
    await updateWallet(path, key, (c) => {
      c.credentials.one = cred('one', 'refresh-SECRET-123');
      c.clients['https://issuer.example.org'] = { issuer: 'https://issuer.example.org', clientId: 'cid', clientSecret: 'client-SECRET-456' };
    });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text)).toMatchObject({ format: 'petrel-wallet', version: 1, kdf: { name: 'scrypt', N: FAST_KDF.N }, cipher: { name: 'aes-256-gcm' } });
    expect(text).not.toContain('SECRET');
    const { contents } = await unlockWallet(path, 'correct horse');
    expect(contents.credentials.one?.refreshToken).toBe('refresh-SECRET-123');
  });

  it('refuses to replace an existing wallet', async () => {
    const path = await walletPath();
    await initWallet(path, 'pw', FAST_KDF);
    expect((await failure(initWallet(path, 'other', FAST_KDF))).code).toBe('WALLET_EXISTS');
  });

  it('says there is no wallet, and how to make one', async () => {
    const e = await failure(unlockWallet(await walletPath(), 'pw'));
    expect(e.code).toBe('WALLET_NOT_INITIALIZED');
    expect(e.hint).toContain('petrel wallet init');
  });

  it('refuses a wrong password clearly and leaves the file as it was', async () => {
    const path = await walletPath();
    await initWallet(path, 'right', FAST_KDF);
    const before = await readFile(path);
    const e = await failure(unlockWallet(path, 'wrong'));
    expect(e.code).toBe('WALLET_BAD_PASSWORD');
    expect(e.message).toContain('wrong wallet password');
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it.each([
    ['truncated', (t: string) => t.slice(0, Math.floor(t.length / 2))],
    ['garbage', () => '\u0000\u0001not json'],
    ['another format', () => JSON.stringify({ format: 'something-else', version: 1 })],
  ])('reports a %s file as corrupt and leaves it untouched', async (_what, damage) => {
    const path = await walletPath();
    await initWallet(path, 'pw', FAST_KDF);
    const damaged = damage(await readFile(path, 'utf8'));
    await writeFile(path, damaged);
    const e = await failure(unlockWallet(path, 'pw'));
    expect(e.code).toBe('WALLET_CORRUPT');
    expect(e.message).toContain(path);
    expect(await readFile(path, 'utf8')).toBe(damaged);
  });

  it('detects a tampered ciphertext or KDF as a failed decryption', async () => {
    const path = await walletPath();
    await initWallet(path, 'pw', FAST_KDF);
    const env = JSON.parse(await readFile(path, 'utf8'));
    const flipped = Buffer.from(env.ciphertext, 'base64');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    await writeFile(path, JSON.stringify({ ...env, ciphertext: flipped.toString('base64') }));
    expect((await failure(unlockWallet(path, 'pw'))).code).toBe('WALLET_BAD_PASSWORD');
  });

  it('changes the password: the old one stops working, the contents stay', async () => {
    const path = await walletPath();
    const key = await initWallet(path, 'old', FAST_KDF);
    await updateWallet(path, key, (c) => void (c.credentials.a = cred('a', 'rt-a')));
    const newKey = await rekeyWallet(path, 'old', 'new');
    expect((await failure(unlockWallet(path, 'old'))).code).toBe('WALLET_BAD_PASSWORD');
    // The agent's key from before the change: its transfers wait for `wallet open`, they do not fail.
    expect((await failure(readWallet(path, key))).code, 'a key from before the change').toBe('WALLET_CLOSED');
    expect((await readWallet(path, newKey)).credentials.a?.refreshToken).toBe('rt-a');
  });

  it('loses no update when two processes each upsert 500 different entries at once', async () => {
    const path = await walletPath();
    await initWallet(path, 'pw', FAST_KDF);
    const children = [writer(path, 'pw', 'a', 500), writer(path, 'pw', 'b', 500)];
    const codes = await Promise.all(children.map((c) => new Promise((r) => c.on('exit', r))));
    expect(codes).toEqual([0, 0]);
    const { contents } = await unlockWallet(path, 'pw');
    const ids = Object.keys(contents.credentials);
    expect(ids.length).toBe(1000);
    for (let i = 0; i < 500; i++) {
      expect(contents.credentials[`a${i}`]?.refreshToken).toBe(`rt-a${i}`);
      expect(contents.credentials[`b${i}`]?.refreshToken).toBe(`rt-b${i}`);
    }
  }, 120_000);

  it('still opens after a writer is killed with SIGKILL in the middle of its writes', async () => {
    const path = await walletPath();
    await initWallet(path, 'pw', FAST_KDF);
    for (let round = 0; round < 5; round++) {
      const child = writer(path, 'pw', `k${round}-`, 100_000);
      await new Promise((r) => child.stdout?.once('data', r));
      await new Promise((r) => setTimeout(r, 20 + round * 37));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      const { contents } = await unlockWallet(path, 'pw');
      expect(Object.keys(contents.credentials).length).toBeGreaterThan(0);
      // The killed writer's lock would go stale after 10 s; removing it spares the next round the wait.
      await rm(`${path}.lock`, { recursive: true, force: true });
    }
  }, 120_000);
});
