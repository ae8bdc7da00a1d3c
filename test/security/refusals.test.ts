// Security: smaller refusals, each with a clear message. A redirect from https to plain http,
// idle and slowloris connections to the agent's socket, a garbage page cursor, a wallet file others
// may read or that is a link, and a server's header flood.
import { chmod, readFile, symlink } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { initWallet, unlockWallet, walletPresent } from '../../src/wallet/file.js';
import { makeHome, petrel, startAgent } from '../helpers/agent.js';
import { tempDir as makeTempDir, testEngine, quietContext } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';

const tb = inject('testbed');
const ctx = quietContext;
const FAST_KDF = { N: 2 ** 12, r: 8, p: 1 };

const tempDir = () => makeTempDir('petrel-refuse-');
const engine = () => testEngine(tb);

/** A plain-http server that records what reaches it. */
async function plainHttp() {
  const seen: { url: string | undefined; auth: string | undefined }[] = [];
  const server = createHttpServer((req, res) => {
    seen.push({ url: req.url, auth: req.headers.authorization });
    res.end('unencrypted');
  });
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://localhost:${(server.address() as AddressInfo).port}`, seen };
}

describe('refusals', () => {
  it('an https → http redirect is refused by default; --allow-insecure-redirect follows it without the token', async () => {
    const plain = await plainHttp();
    const secure = await standIn(tb, (_req, res) => res.writeHead(302, { Location: `${plain.url}/data` }).end());
    const dir = await tempDir();
    const task = { kind: 'get' as const, source: `${secure.url}/f`, destination: join(dir, 'f'), token: 'a-token', checksum: 'none' as const };

    const err = (await engine().run(task, ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_REFUSED');
    expect(err.transient).toBe(false);
    expect(err.message).toContain('redirects to plain http');
    expect(err.hint).toContain('--allow-insecure-redirect');
    expect(plain.seen).toEqual([]);

    await engine().run({ ...task, allowInsecureRedirect: true }, ctx());
    expect(plain.seen).toEqual([{ url: '/data', auth: undefined }]);
    expect(await readFile(join(dir, 'f'), 'utf8')).toBe('unencrypted');
  });

  it('the CLI takes --allow-insecure-redirect for a foreground get', async () => {
    const plain = await plainHttp();
    const secure = await standIn(tb, (_req, res) => res.writeHead(307, { Location: `${plain.url}/data` }).end());
    const home = await makeHome(tb);
    onTestFinished(() => home.cleanup());
    const refused = await petrel(home, ['get', '-q', '--checksum', 'none', `${secure.url}/f`, join(home.dir, 'f')]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('redirects to plain http');
    expect(refused.stdout).toContain('--allow-insecure-redirect');
    const allowed = await petrel(home, ['get', '-q', '--checksum', 'none', '--allow-insecure-redirect', `${secure.url}/f`, join(home.dir, 'f')]);
    expect(allowed.code).toBe(0);
    expect(await readFile(join(home.dir, 'f'), 'utf8')).toBe('unencrypted');
  });

  it('the agent closes connections that send nothing, and slowloris ones that never finish their head', async () => {
    const home = await makeHome(tb);
    onTestFinished(() => home.cleanup());
    const agent = await startAgent(home);
    onTestFinished(async () => {
      await agent.stop();
    });
    const closedAfter = (send?: (write: (s: string) => void) => void) =>
      new Promise<number>((resolve) => {
        const started = Date.now();
        const socket = connect(home.socket);
        let timer: NodeJS.Timeout | undefined;
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearInterval(timer);
          resolve(Date.now() - started);
        });
        if (send) socket.once('connect', () => (timer = setInterval(() => send((s) => socket.write(s)), 500)));
      });
    let line = 0;
    const [idle, slow] = await Promise.all([
      closedAfter(),
      closedAfter((write) => write(line++ === 0 ? 'GET /v1/health HTTP/1.1\r\nHost: petrel\r\n' : `X-Slow-${line}: 1\r\n`)),
    ]);
    // Within the 10-s bounds plus the server's 1-s check, not the minutes Node allows by default.
    expect(idle).toBeLessThan(15_000);
    expect(slow).toBeLessThan(15_000);
    expect((await agent.client.health()).ok).toBe(true);
  }, 40_000);

  it('a garbage cursor is a 400, not an empty page', async () => {
    const home = await makeHome(tb);
    onTestFinished(() => home.cleanup());
    const agent = await startAgent(home);
    onTestFinished(async () => {
      await agent.stop();
    });
    await expect(agent.client.list({ cursor: 'garbage' })).rejects.toMatchObject({ code: 'API_BAD_REQUEST', message: expect.stringContaining('cursor') });
    await expect(agent.client.list({ cursor: Buffer.from('12:../x').toString('base64url') })).rejects.toMatchObject({ code: 'API_BAD_REQUEST' });
    const { id } = await agent.client.submit({ kind: 'get', transfers: [{ source: 'https://localhost:1/f', destination: join(home.dir, 'f') }] });
    await expect(agent.client.job(id, { transferCursor: 'x' })).rejects.toMatchObject({ code: 'API_BAD_REQUEST' });
    await expect(agent.client.job(id, { transferCursor: '' })).rejects.toMatchObject({ code: 'API_BAD_REQUEST' });
    expect((await agent.client.list()).jobs.map((j) => j.id)).toEqual([id]);
  });

  it('a wallet file others may read is refused with the fix, and opens once it is 0600', async () => {
    const dir = await tempDir();
    const path = join(dir, 'wallet.json');
    await initWallet(path, 'pw', FAST_KDF);
    await chmod(path, 0o644);
    await expect(unlockWallet(path, 'pw')).rejects.toMatchObject({
      code: 'WALLET_UNSAFE',
      message: `the wallet ${path} may be read or changed by others (mode 644)`,
      hint: expect.stringContaining(`chmod 600 ${path}`),
    });
    await chmod(path, 0o600);
    await expect(unlockWallet(path, 'pw')).resolves.toBeDefined();
  });

  it('a symlinked wallet.json is refused as what it is, not as a missing wallet', async () => {
    const dir = await tempDir();
    const real = join(dir, 'real-wallet.json');
    await initWallet(real, 'pw', FAST_KDF);
    const path = join(dir, 'wallet.json');
    await symlink(real, path);
    expect(walletPresent(path)).toBe(true);
    await expect(unlockWallet(path, 'pw')).rejects.toMatchObject({ code: 'WALLET_UNSAFE', message: expect.stringContaining(`is a symbolic link (to ${real})`) });
    await expect(initWallet(path, 'pw', FAST_KDF)).rejects.toMatchObject({ code: 'WALLET_EXISTS' });
  });

  it("a server's header flood fails at once, not retried as transient", async () => {
    const flood = await standIn(tb, (_req, res) => {
      for (let i = 0; i < 200; i++) res.setHeader(`X-Flood-${i}`, 'x'.repeat(500));
      res.end('never read');
    });
    const dir = await tempDir();
    const err = (await engine().run({ kind: 'get', source: `${flood.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'none' }, ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_PROTOCOL');
    expect(err.transient).toBe(false);
    expect(err.message).toContain('more header bytes than petrel accepts');
  });
});
