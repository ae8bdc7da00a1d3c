// Security: the agent's socket is trusted only in a directory nobody else can use. Another user
// who made the fallback directory (/tmp/petrel-<uid>) first, or left it open, could put their own
// socket there and receive wallet passwords and job tokens: the agent and the CLI both refuse.
import { chmod, chown, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { makeHome, petrel, type Home } from '../helpers/agent.js';

const tb = inject('testbed');
const isRoot = process.getuid?.() === 0;
const me = process.getuid?.() ?? 0;

/** A home whose socket falls back to $TMPDIR/petrel-<uid>, as with XDG_RUNTIME_DIR unset. */
async function fallbackHome(): Promise<{ home: Home; socketDir: string }> {
  const home = await makeHome(tb);
  onTestFinished(() => home.cleanup());
  const tmp = await mkdtemp(join(tmpdir(), 'petrel-tmp-'));
  onTestFinished(() => rm(tmp, { recursive: true, force: true }));
  delete home.env.XDG_RUNTIME_DIR;
  home.env.TMPDIR = tmp;
  return { home, socketDir: join(tmp, `petrel-${me}`) };
}

/** Someone else's "agent": a socket that counts who connects and what they send. */
async function impostor(path: string): Promise<{ connections: number; bytes: number; server: Server }> {
  const seen = { connections: 0, bytes: 0, server: createServer() };
  seen.server.on('connection', (c) => {
    seen.connections++;
    c.on('data', (d: Buffer) => (seen.bytes += d.length));
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => seen.server.listen(path, r));
  onTestFinished(() => new Promise<void>((r) => seen.server.close(() => r())));
  return seen;
}

describe('the socket directory', () => {
  it('a fallback directory others may write to (mode 777, made beforehand) is refused by the agent and the CLI, and the socket in it gets nothing', async () => {
    const { home, socketDir } = await fallbackHome();
    await mkdir(socketDir);
    await chmod(socketDir, 0o777);
    const fake = await impostor(join(socketDir, 'agent.sock'));

    const agent = await petrel(home, ['agent', 'run'], { timeoutMs: 15_000 });
    expect(agent.code).not.toBe(0);
    expect(agent.stderr).toContain(`the socket directory ${socketDir} may be used by others (mode 777)`);
    expect(agent.stderr).toContain(`chmod 700 ${socketDir}`);

    const cli = await petrel(home, ['wallet', 'open', '--password-stdin'], { input: 'the wallet password\n' });
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain('may be used by others');
    const list = await petrel(home, ['job', 'list', '--json']);
    expect(list.code).toBe(3);
    expect(JSON.parse(list.stdout).error.code).toBe('AGENT_SOCKET_UNSAFE');
    expect(fake.connections).toBe(0);
    expect(fake.bytes).toBe(0);
  });

  it.runIf(isRoot)('a fallback directory owned by another user is refused, even with mode 700', async () => {
    const { home, socketDir } = await fallbackHome();
    await mkdir(socketDir, { mode: 0o700 });
    const fake = await impostor(join(socketDir, 'agent.sock'));
    await chown(socketDir, tb.servers.a.uid, tb.servers.a.gid);

    const agent = await petrel(home, ['agent', 'run'], { timeoutMs: 15_000 });
    expect(agent.code).not.toBe(0);
    expect(agent.stderr).toContain(`belongs to user ${tb.servers.a.uid}, not to you`);
    const cli = await petrel(home, ['get', '--async', 'https://localhost:1/f', join(home.dir, 'f')]);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain(`belongs to user ${tb.servers.a.uid}, not to you`);
    expect(fake.connections).toBe(0);
  });

  it('a socket directory that is a symbolic link is refused', async () => {
    const { home, socketDir } = await fallbackHome();
    const elsewhere = await mkdtemp(join(tmpdir(), 'petrel-elsewhere-'));
    onTestFinished(() => rm(elsewhere, { recursive: true, force: true }));
    await symlink(elsewhere, socketDir);
    const cli = await petrel(home, ['agent', 'status']);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain('is a symbolic link');
  });

  it.runIf(isRoot)("a socket owned by another user in the user's own directory gets nothing from the CLI", async () => {
    const { home, socketDir } = await fallbackHome();
    await mkdir(socketDir, { mode: 0o700 });
    const sock = join(socketDir, 'agent.sock');
    const fake = await impostor(sock);
    await chown(sock, tb.servers.a.uid, tb.servers.a.gid);
    const cli = await petrel(home, ['wallet', 'status']);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain(`the agent socket ${sock} belongs to user ${tb.servers.a.uid}`);
    expect(fake.connections).toBe(0);
  });

  it('with the fallback directory free, the agent makes it 0700 and the CLI talks to it', async () => {
    const { home, socketDir } = await fallbackHome();
    const start = await petrel(home, ['agent', 'start']);
    onTestFinished(async () => {
      await petrel(home, ['agent', 'stop']);
    });
    expect(start.code).toBe(0);
    expect(start.stdout).toContain(join(socketDir, 'agent.sock'));
    const { stat } = await import('node:fs/promises');
    expect((await stat(socketDir)).mode & 0o777).toBe(0o700);
    const status = await petrel(home, ['agent', 'status']);
    expect(status.code).toBe(0);
  });
});
