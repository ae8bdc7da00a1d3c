// The petrel command as a user runs it: exit codes, messages, in-process and --async runs.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { CLI, makeHome, petrel, type Home } from '../helpers/agent.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a } = tb.servers;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function home(config: Record<string, unknown> = {}): Promise<Home> {
  const h = await makeHome(tb, { retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 500 }, ...config });
  onTestFinished(async () => {
    await petrel(h, ['agent', 'stop']);
    await h.cleanup();
  });
  return h;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => done({ code, out }));
  });
}

async function tokenFile(h: Home, scope = 'storage.read:/ storage.create:/ storage.modify:/'): Promise<string> {
  const file = join(h.dir, `token-${randomUUID().slice(0, 6)}`);
  await writeFile(file, await mintToken(tb, { scope }), { mode: 0o600 });
  return file;
}

describe('petrel CLI', () => {
  it('prints its version', async () => {
    const h = await home();
    const res = await petrel(h, ['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(VERSION);
  });

  it.each([
    [['frobnicate']],
    [['get', 'https://localhost/x']],
    [['get', '/tmp/local-source', '/tmp/dest']],
    [['put', 'https://localhost/x', '/tmp/dest']],
    [['get', '--checksum', 'sha1', 'https://localhost/x', '/tmp/y']],
    [['get', 'ftp://host/x', '/tmp/y']],
  ])('exits 2 on a usage error: %j', async (args) => {
    const h = await home();
    const res = await petrel(h, args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^petrel: /);
  });

  it('refuses at once a token that has expired or lacks the scope, naming the scope it needs', async () => {
    const h = await home();
    const expired = join(h.dir, 'expired');
    await writeFile(expired, await mintToken(tb, { scope: 'storage.read:/', expiresIn: -60 }));
    const res1 = await petrel(h, ['get', '--async', '--token', expired, `${a.url}/data/f.root`, join(h.dir, 'f.root')]);
    expect(res1.code).toBe(2);
    expect(res1.stderr).toContain('the token expired');
    const narrow = join(h.dir, 'narrow');
    await writeFile(narrow, await mintToken(tb, { scope: 'storage.read:/elsewhere' }));
    const res2 = await petrel(h, ['get', '--async', '--token', narrow, `${a.url}/data/f.root`, join(h.dir, 'f.root')]);
    expect(res2.code).toBe(2);
    expect(res2.stderr).toContain('storage.read:/data/f.root');
    expect(existsSync(h.socket), 'nothing was queued, no agent started').toBe(false);
  });

  it('exits 2 with a clear message when the token file cannot be read', async () => {
    const h = await home();
    const res = await petrel(h, ['get', '--token', join(h.dir, 'nope'), `${a.url}/x`, join(h.dir, 'x')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('cannot read the token file');
  });

  it('downloads in-process without --async, printing plain progress lines when not on a terminal', async () => {
    const h = await home();
    const path = `/cli-${randomUUID().slice(0, 8)}.bin`;
    const data = Buffer.alloc(3 << 20, 1);
    await writeDataFile(a, path, data);
    const res = await petrel(h, ['get', '--token', await tokenFile(h), `${a.url}${path}`, `${h.dir}/`]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/succeeded: 1 transfer, 3\.0 MiB/);
    expect(res.stderr).toMatch(/^petrel: job \w+ (running|succeeded)/m);
    expect((await readFile(join(h.dir, path.slice(1)))).equals(data)).toBe(true);
    expect(existsSync(h.socket), 'no agent was started').toBe(false);
  });

  it('draws a progress bar on a terminal', async () => {
    const h = await home();
    const path = `/tty-${randomUUID().slice(0, 8)}.bin`;
    await writeDataFile(a, path, 8 << 20);
    const cmd = [process.execPath, CLI, 'get', '--token', await tokenFile(h), `${a.url}${path}`, join(h.dir, 'tty.bin')].map((x) => `'${x}'`).join(' ');
    // script(1) runs the command on a pseudo-terminal, as a person would.
    const res = await run('script', ['-qec', cmd, '/dev/null'], h.env);
    expect(res.code, res.out).toBe(0);
    const ESC = String.fromCharCode(27);
    const screen = res.out.replace(new RegExp(`${ESC}\\[[0-9;?]*[a-zA-Z]|${ESC}[78]`, 'g'), '');
    expect(screen).toMatch(/[░█]{10,}/);
    expect(screen).toMatch(/100% \| 1\/1 files \| 8\.0 MiB\/8\.0 MiB/);
  });

  it('uses a token found by WLCG bearer-token discovery (BEARER_TOKEN)', async () => {
    const h = await home();
    const path = `/btd-${randomUUID().slice(0, 8)}.txt`;
    await writeDataFile(a, path, Buffer.from('discovered'));
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const res = await petrel(h, ['get', '-q', `${a.url}${path}`, join(h.dir, 'btd.txt')], { env: { BEARER_TOKEN: token } });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(h.dir, 'btd.txt'), 'utf8')).toBe('discovered');
  });

  it('says how many transfers of a job failed, which, and why, and exits 1', async () => {
    const h = await home();
    const dir = `/partial-${randomUUID().slice(0, 8)}`;
    await writeDataFile(a, `${dir}/one`, 10);
    await writeDataFile(a, `${dir}/two`, 10);
    const res = await petrel(h, ['get', '-q', '--token', await tokenFile(h), `${a.url}${dir}/one`, `${a.url}${dir}/missing`, `${a.url}${dir}/two`, `${h.dir}/out/`]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('2 of 3 transfers succeeded, 1 failed');
    expect(res.stdout).toContain(`${a.url}${dir}/missing`);
    expect(res.stdout).toMatch(/404 Unable to open \/partial-\w+\/missing; no such file or directory/);
    expect(res.stdout).toContain('petrel job retry');
  });

  it('exits 3 with what to run when no agent answers for a job command', async () => {
    const h = await home();
    const res = await petrel(h, ['job', 'list']);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('petrel agent start');
  });

  it('exits 3 and says why when --async cannot start an agent', async () => {
    const h = await home();
    // The socket's directory cannot be made: its parent is a file.
    const blocker = join(h.dir, 'not-a-dir');
    await writeFile(blocker, '');
    const res = await petrel(h, ['get', '--async', `${a.url}/x`, join(h.dir, 'x')], { env: { PETREL_SOCKET: join(blocker, 'agent.sock') } });
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/the agent exited at start/);
    expect(res.stderr).toMatch(/cannot create the socket directory/);
    expect(res.stderr).toContain('hint:');
  });

  it('--async starts the agent when none runs, prints {"id"} with --json, and the job can be followed', async () => {
    const h = await home();
    const path = `/async-${randomUUID().slice(0, 8)}.bin`;
    await writeDataFile(a, path, 1 << 20);
    const res = await petrel(h, ['get', '--async', '--json', '--token', await tokenFile(h), `${a.url}${path}`, join(h.dir, 'a.bin')]);
    expect(res.code, res.stderr).toBe(0);
    const { id } = JSON.parse(res.stdout) as { id: string };
    expect(id).toMatch(/^[a-z0-9]{10}$/);
    expect(Object.keys(JSON.parse(res.stdout))).toEqual(['id']);

    const wait = await petrel(h, ['job', 'wait', id, '--json']);
    expect(wait.code).toBe(0);
    expect(JSON.parse(wait.stdout).state).toBe('succeeded');

    const status = await petrel(h, ['job', 'status', id]);
    expect(status.stdout).toContain(`#0 succeeded`);
    const list = await petrel(h, ['job', 'list', '--state', 'succeeded', '--json']);
    expect((JSON.parse(list.stdout) as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toContain(id);
  });

  it('retry re-queues the failed transfers of a finished job, which then succeed', async () => {
    const h = await home();
    const path = `/later-${randomUUID().slice(0, 8)}.txt`;
    const token = await tokenFile(h);
    const first = await petrel(h, ['get', '--async', '--wait', '-q', '--token', token, `${a.url}${path}`, join(h.dir, 'later.txt')]);
    expect(first.code).toBe(1);
    const id = /job (\w+) failed/.exec(first.stdout)?.[1] as string;
    await writeDataFile(a, path, Buffer.from('arrived'));
    expect((await petrel(h, ['job', 'retry', id])).stdout).toContain('re-queued: 1 transfer to run');
    expect((await petrel(h, ['job', 'wait', id, '-q'])).code).toBe(0);
    expect(await readFile(join(h.dir, 'later.txt'), 'utf8')).toBe('arrived');
  });

  it('refuses to retry a job that has not finished, and cancels it', async () => {
    // A dead port and a long backoff keep the job queued for a minute.
    const h = await home({ retry: { attempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const sub = await petrel(h, ['get', '--async', 'https://localhost:1/never', join(h.dir, 'never.bin')]);
    const id = sub.stdout.trim();
    const res = await petrel(h, ['job', 'retry', id]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/is still (queued|running)/);
    expect(res.stderr).toContain(`petrel job wait ${id}`);
    const cancel = await petrel(h, ['job', 'cancel', id, '--json']);
    expect(JSON.parse(cancel.stdout).state).toBe('cancelled');
    const status = JSON.parse((await petrel(h, ['job', 'status', id, '--json'])).stdout);
    expect(status.transfers[0].state).toBe('cancelled');
    const again = await petrel(h, ['job', 'cancel', id]);
    expect(again.code, 'a finished job cannot be cancelled').toBe(1);
    expect(again.stderr).toContain('has already cancelled');
    expect(status.transfers[0].error.code, 'the last attempt’s reason is kept').toBe('TRANSFER_CONNECTION');
  });
});
