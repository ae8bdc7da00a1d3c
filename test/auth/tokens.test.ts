// The whole token chain for real: `petrel warm` (device code approved at the oidc-provider IdP)
// → the encrypted wallet → the agent → XRootD, which checks every token it is given.
import { readFile, readdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { unlockWallet } from '../../src/wallet/index.js';
import { spawn } from 'node:child_process';
import { CLI, finished, makeHome, petrel, waitForJob, type Home } from '../helpers/agent.js';
import { warmWithApproval } from '../helpers/warm.js';
import { approveDevice, idpStats, resetIdpStats, setIdpConfig, startIdp, stopIdp, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const PASSWORD = 'correct horse battery staple';
const a = tb.servers.a;

interface Ctx {
  home: Home;
  prefix: string;
  out: string;
}

async function setup(name: string, extra: Record<string, unknown> = {}): Promise<Ctx> {
  const prefix = `${a.url}/tok-${name}`;
  const home = await makeHome(tb, { issuers: [{ prefix, issuer: tb.idp.url }], retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 }, ...extra });
  const out = await mkdtemp(join(home.dir, 'out-'));
  return { home, prefix, out };
}

async function agentClient(home: Home) {
  const { createAgentClient } = await import('../../src/api/client.js');
  return createAgentClient({ socket: home.socket, timeoutMs: 10_000 });
}

async function stopAgentOf(home: Home): Promise<void> {
  await petrel(home, ['agent', 'stop']);
}

/** Every file under `dir` (recursively) as one string, to grep for secrets. */
async function allText(dir: string): Promise<string> {
  const names = await readdir(dir, { recursive: true });
  let text = '';
  for (const n of names) text += await readFile(join(dir, n), 'latin1').catch(() => '');
  return text;
}

describe('warm → wallet → agent → XRootD', () => {
  let ctx: Ctx;
  beforeAll(async () => {
    ctx = await setup('chain');
    for (let i = 0; i < 3; i++) await writeDataFile(a, `/tok-chain/f${i}.bin`, 64 * 1024);
  });
  afterAll(async () => {
    await stopAgentOf(ctx.home);
    await ctx.home.cleanup();
  });

  it('warms by device code, and the agent downloads with the credential', async () => {
    const warm = await warmWithApproval(tb, ctx.home, [ctx.prefix], PASSWORD);
    expect(warm.stderr).toContain(`${tb.idp.url}/device`);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stdout).toContain('storage.read:/tok-chain');

    const get = await petrel(ctx.home, ['get', '--async', '--json', `${ctx.prefix}/f0.bin`, `${ctx.prefix}/f1.bin`, ctx.out]);
    expect(get.code, get.stderr).toBe(0);
    const id = (JSON.parse(get.stdout) as { id: string }).id;
    const client = await agentClient(ctx.home);
    const job = await waitForJob(client, id, finished, 60_000);
    await client.close();
    expect(job.state, JSON.stringify(job)).toBe('succeeded');
    expect((await readFile(join(ctx.out, 'f1.bin'))).length).toBe(64 * 1024);
  });

  it('petrel token prints a token XRootD accepts for that prefix, and no secret lands in the log, the database or the wallet file', async () => {
    const tok = await petrel(ctx.home, ['token', '--json', `${ctx.prefix}/f2.bin`]);
    expect(tok.code, tok.stderr).toBe(0);
    const reply = JSON.parse(tok.stdout) as { token: string; source: string };
    expect(reply.source).toBe('cache');
    const { request } = await import('undici');
    const { Agent } = await import('undici');
    const dispatcher = new Agent({ connect: { ca: await readFile(tb.caFile) } });
    const res = await request(`${ctx.prefix}/f2.bin`, { dispatcher, headers: { Authorization: `Bearer ${reply.token}` } });
    await res.body.dump();
    await dispatcher.close();
    expect(res.statusCode).toBe(200);

    const { contents } = await unlockWallet(join(ctx.home.dir, 'config', 'petrel', 'wallet.json'), PASSWORD);
    const cred = Object.values(contents.credentials)[0];
    const client = Object.values(contents.clients)[0];
    const secrets = [reply.token, cred?.refreshToken, client?.clientSecret, PASSWORD];
    expect(secrets.every((s) => typeof s === 'string' && s.length > 8)).toBe(true);
    const stored = (await allText(ctx.home.stateDir)) + (await readFile(join(ctx.home.dir, 'config', 'petrel', 'wallet.json'), 'utf8'));
    for (const s of secrets) expect(stored.includes(s as string)).toBe(false);
  });

  it('background refresh leaves a fresh token alone (a 10-min token is renewed at half-life, not whenever it is in the 30-min window)', async () => {
    const client = await agentClient(ctx.home);
    try {
      expect(await client.refreshCredentials()).toEqual({ refreshed: [], failed: [] });
    } finally {
      await client.close();
    }
  });

  it('outside any configured prefix, an open wallet does not make a transfer wait: no token is sent and the storage decides', async () => {
    await writeDataFile(a, '/elsewhere/x.bin', 10);
    const client = await agentClient(ctx.home);
    try {
      const { id } = await client.submit({ kind: 'get', transfers: [{ source: `${a.url}/elsewhere/x.bin`, destination: join(ctx.out, 'elsewhere.bin') }], checksum: 'none' });
      const job = await waitForJob(client, id, finished, 30_000);
      expect(job.state).toBe('failed');
      expect(job.error?.code).toBe('TRANSFER_DENIED');
    } finally {
      await client.close();
    }
  });

  it('a foreground get (no --async) borrows the token of the agent\'s open wallet', async () => {
    const get = await petrel(ctx.home, ['get', '-q', `${ctx.prefix}/f2.bin`, join(ctx.out, 'fg.bin')]);
    expect(get.code, get.stdout + get.stderr).toBe(0);
    expect((await readFile(join(ctx.out, 'fg.bin'))).length).toBe(64 * 1024);
  });

  it('a closed wallet parks jobs in waiting with the hint, and they run once it opens', async () => {
    expect((await petrel(ctx.home, ['wallet', 'close'])).code).toBe(0);
    const get = await petrel(ctx.home, ['get', '--async', '--json', `${ctx.prefix}/f2.bin`, join(ctx.out, 'later.bin')]);
    expect(get.code, get.stderr).toBe(0);
    const id = (JSON.parse(get.stdout) as { id: string }).id;
    const client = await agentClient(ctx.home);
    const waiting = await waitForJob(client, id, (j) => j.state === 'waiting', 20_000);
    expect(waiting.waiting?.hint).toContain('petrel wallet open');
    const open = await petrel(ctx.home, ['wallet', 'open', '--password-stdin'], { input: `${PASSWORD}\n` });
    expect(open.code, open.stderr).toBe(0);
    const job = await waitForJob(client, id, finished, 30_000);
    await client.close();
    expect(job.state).toBe('succeeded');
  });
});

describe('renewal', () => {
  let ctx: Ctx;
  beforeAll(async () => {
    // 60-second access tokens. The agent treats a token as used up once less than 59 s remain
    // and refreshes in the background every second what has less than 59.5 s left: for the
    // agent a token lasts one second, so a job of a few seconds spans several lifetimes.
    await setIdpConfig(tb, { accessTokenTtl: 60 });
    ctx = await setup('renew', {
      concurrency: 1,
      tokens: { minValidityMs: 59_000, refreshWindowMs: 59_500, refreshSchedule: '* * * * * *' },
    });
    await Promise.all(Array.from({ length: 500 }, (_, i) => writeDataFile(a, `/tok-renew/d/f${i}.bin`, 16 * 1024)));
    const warm = await warmWithApproval(tb, ctx.home, [ctx.prefix], PASSWORD);
    expect(warm.code, warm.stderr).toBe(0);
  });
  afterAll(async () => {
    await setIdpConfig(tb, { accessTokenTtl: 600 });
    await startIdp(tb);
    await stopAgentOf(ctx.home);
    await ctx.home.cleanup();
  });

  it('500 transfers over many token lifetimes: none fails, and the issuer sees one refresh per renewal, not one per transfer', async () => {
    await resetIdpStats(tb);
    const started = Date.now();
    const files = Array.from({ length: 500 }, (_, i) => `${ctx.prefix}/d/f${i}.bin`);
    const client = await agentClient(ctx.home);
    const { id } = await client.submit({ kind: 'get', transfers: files.map((f, i) => ({ source: f, destination: join(ctx.out, `f${i}.bin`) })), checksum: 'adler32' });
    const job = await waitForJob(client, id, finished, 180_000);
    const seconds = (Date.now() - started) / 1000;
    await client.close();
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.counts.succeeded).toBe(500);
    const refreshes = (await idpStats(tb)).token.filter((e) => e.grant_type === 'refresh_token');
    const calls = refreshes.reduce((n, e) => n + e.count, 0);
    expect(refreshes.every((e) => e.outcome === 'success'), JSON.stringify(refreshes)).toBe(true);
    // Each renewal asked for the read scope at the prefix only.
    expect(new Set(refreshes.map((e) => e.scope))).toEqual(new Set(['storage.read:/tok-renew']));
    // A token here is used up 1 s after it was issued (60-s tokens, 59 s minimum validity), so a
    // job that ran S seconds outlived about S of them: they were renewed as it went...
    expect(seconds).toBeGreaterThan(1);
    expect(calls, `${calls} refreshes in ${seconds} s`).toBeGreaterThanOrEqual(Math.max(1, Math.floor(seconds) - 1));
    // ...at most once per background run and once per used-up token (single-flight), never per transfer.
    expect(calls, `${calls} refreshes in ${seconds} s`).toBeLessThanOrEqual(2 * Math.ceil(seconds) + 2);
  });

  it('with the issuer down, transfers go on with the still-valid token; refresh succeeds once it is back', async () => {
    await stopIdp(tb);
    try {
      // Past the agent's minimum validity: every transfer now wants a renewal, and cannot get one.
      await new Promise((r) => setTimeout(r, 1500));
      const client = await agentClient(ctx.home);
      const down = await client.refreshCredentials();
      expect(down.failed.map((f) => f.code), JSON.stringify(down)).toEqual(['IDP_UNAVAILABLE']);
      const { id } = await client.submit({ kind: 'get', transfers: Array.from({ length: 20 }, (_, i) => ({ source: `${ctx.prefix}/d/f${i}.bin`, destination: join(ctx.out, 'down', `f${i}.bin`) })), checksum: 'none' });
      const job = await waitForJob(client, id, finished, 60_000);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(await readFile(join(ctx.home.stateDir, 'agent.log'), 'utf8')).toContain('using the current token while it lasts');
      await startIdp(tb);
      const back = await client.refreshCredentials();
      expect(back.failed).toEqual([]);
      expect(back.refreshed.length).toBeGreaterThanOrEqual(1);
      await client.close();
    } finally {
      await startIdp(tb);
    }
  });
});

describe('single-flight', () => {
  let ctx: Ctx;
  beforeAll(async () => {
    await setIdpConfig(tb, { accessTokenTtl: 60 });
    // No background refresh (once a year): every renewal here comes from transfers that need one.
    ctx = await setup('flight', { concurrency: 8, perHostConcurrency: 8, tokens: { minValidityMs: 59_000, refreshSchedule: '0 0 1 1 *' } });
    await Promise.all(Array.from({ length: 50 }, (_, i) => writeDataFile(a, `/tok-flight/f${i}.bin`, 4096)));
    const warm = await warmWithApproval(tb, ctx.home, [ctx.prefix], PASSWORD);
    expect(warm.code, warm.stderr).toBe(0);
  });
  afterAll(async () => {
    await setIdpConfig(tb, { accessTokenTtl: 600 });
    await stopAgentOf(ctx.home);
    await ctx.home.cleanup();
  });

  it('50 waiting transfers that all need a fresh token make one call to the issuer when the wallet opens', async () => {
    expect((await petrel(ctx.home, ['wallet', 'close'])).code).toBe(0);
    const client = await agentClient(ctx.home);
    const { id } = await client.submit({ kind: 'get', transfers: Array.from({ length: 50 }, (_, i) => ({ source: `${ctx.prefix}/f${i}.bin`, destination: join(ctx.out, `f${i}.bin`) })), checksum: 'none' });
    await waitForJob(client, id, (j) => j.counts.waiting === 50, 20_000);
    // The warm's token now has less than the minimum validity left.
    await new Promise((r) => setTimeout(r, 1200));
    await resetIdpStats(tb);
    const open = await petrel(ctx.home, ['wallet', 'open', '--password-stdin'], { input: `${PASSWORD}\n` });
    expect(open.code, open.stderr).toBe(0);
    const job = await waitForJob(client, id, finished, 30_000);
    await client.close();
    expect(job.state).toBe('succeeded');
    const calls = (await idpStats(tb)).token.filter((e) => e.grant_type === 'refresh_token').reduce((n, e) => n + e.count, 0);
    // One renewal; a second only if the job outlived the one second a token is good for here.
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(2);
  });
});

describe('get --async on a terminal', () => {
  let ctx: Ctx;
  beforeAll(async () => {
    ctx = await setup('tty');
    await writeDataFile(a, '/tok-tty/t.bin', 2048);
  });
  afterAll(async () => {
    await stopAgentOf(ctx.home);
    await ctx.home.cleanup();
  });

  it('logs in first when no credential is there yet, then the job runs with it', async () => {
    const cmd = [process.execPath, CLI, 'get', '--async', '--wait', `${ctx.prefix}/t.bin`, join(ctx.out, 't.bin')].map((x) => `'${x}'`).join(' ');
    // script(1) gives the command a pseudo-terminal; what we write to it is what a person types.
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: ctx.home.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let step = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (step === 0 && out.includes('new wallet password:')) {
        step = 1;
        child.stdin.write(`${PASSWORD}\r`);
      } else if (step === 1 && out.includes('again:')) {
        step = 2;
        child.stdin.write(`${PASSWORD}\r`);
      } else if (step === 2) {
        const m = /enter the code (\S+)/.exec(out);
        if (m?.[1]) {
          step = 3;
          void approveDevice(tb, m[1]);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(timer);
    expect(code, out).toBe(0);
    expect(out).toContain('no credential for');
    expect(out).toMatch(/succeeded: 1 transfer/);
    expect(out.includes(PASSWORD)).toBe(false);
    expect((await readFile(join(ctx.out, 't.bin'))).length).toBe(2048);
  });
});

describe('copy with wallet credentials', () => {
  let home: Home;
  const srcPrefix = `${a.url}/tok-cpsrc`;
  const dstPrefix = `${tb.servers.b.url}/tok-cpdst`;
  beforeAll(async () => {
    // Two prefixes on two storages, each with its own credential (they could be two issuers).
    home = await makeHome(tb, { issuers: [{ prefix: srcPrefix, issuer: tb.idp.url }, { prefix: dstPrefix, issuer: tb.idp.url }] });
    await writeDataFile(a, '/tok-cpsrc/c.bin', 4096);
  });
  afterAll(async () => {
    await stopAgentOf(home);
    await home.cleanup();
  });

  it('reads the source with one credential and writes the destination with another, no token given', async () => {
    expect((await warmWithApproval(tb, home, [srcPrefix], PASSWORD)).code).toBe(0);
    const w = await warmWithApproval(tb, home, [dstPrefix, '--write'], PASSWORD);
    expect(w.code, w.stderr).toBe(0);
    const res = await petrel(home, ['copy', '--async', '--wait', '-q', `${srcPrefix}/c.bin`, `${dstPrefix}/c.bin`]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect((await readFile(join(tb.servers.b.dataDir, 'tok-cpdst/c.bin'))).length).toBe(4096);
  });
});
