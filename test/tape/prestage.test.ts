// Tape recalls through a real agent: prestage jobs batched per (endpoint, credential), polled,
// ended per file, cancelled, and carried over a kill -9. The tape endpoint is the stand-in
// (test/helpers/tape-server.ts); everything else is real.
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import type { JobDetail } from '../../src/api/index.js';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { startTapeServer, type TapeServer } from '../helpers/tape-server.js';
import { mintToken } from '../testbed/index.js';

const tb = inject('testbed');

/** Recalls tuned to seconds: batches go out after 300 ms, polls every 200 ms to 1 s. */
const TAPE = { batchSize: 200, fillWaitMs: 300, firstPollMs: 200, maxPollMs: 1000 };

async function agentWith(config: Record<string, unknown> = {}): Promise<{ home: Home; agent: RunningAgent }> {
  const home = await makeHome(tb, { ...config, tape: { ...TAPE, ...(config.tape as object) } });
  const agent = await startAgent(home);
  onTestFinished(async () => {
    await agent.stop();
    await home.cleanup();
  });
  return { home, agent };
}

const stageToken = (sub = 'petrel-test', scope = 'storage.stage:/tape') => mintToken(tb, { scope, sub, expiresIn: 3600 });

function files(server: TapeServer, prefix: string, n: number, opts: { delayMs?: number } = {}): string[] {
  return Array.from({ length: n }, (_, i) => {
    const path = `/tape/${prefix}/f${i}`;
    server.addFile(path, { content: 16, ...opts });
    return `${server.url}${path}`;
  });
}

const recall = (urls: string[]) => urls.map((u) => ({ source: u, destination: u }));

async function allTransfers(agent: RunningAgent, id: string): Promise<JobDetail['transfers']> {
  return (await agent.client.job(id, { transferLimit: 1000 })).transfers;
}

describe('prestage jobs', () => {
  it('1,000 files over 2 endpoints and 2 credentials make exactly 8 stage requests, none mixing credentials, each file staged once', async () => {
    const [east, west] = [await startTapeServer(tb, { dialect: 'dcache' }), await startTapeServer(tb, { dialect: 'storm' })];
    const { agent } = await agentWith();
    const jobs = [];
    for (const who of ['alice', 'bob']) {
      const urls = [...files(east!, who, 250), ...files(west!, who, 250)];
      jobs.push((await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken(who) })).id);
    }
    for (const id of jobs) expect((await waitForJob(agent.client, id, finished, 60_000)).state).toBe('succeeded');
    for (const server of [east!, west!]) {
      // 250 files a credential, at most 200 a request: 200 + 50, twice.
      expect(server.stats.requests.map((r) => r.files.length).sort((a, b) => a - b)).toEqual([50, 50, 200, 200]);
      for (const r of server.stats.requests) expect(new Set(r.files.map((f) => f.split('/')[2])).size, 'one credential a request').toBe(1);
      for (const r of server.stats.requests) expect(r.files.every((f) => f.split('/')[2] === r.token.sub)).toBe(true);
      expect(server.stats.requests.flatMap((r) => r.files).every((f) => server.timesStaged(f) === 1)).toBe(true);
    }
  });

  it('a file the storage fails ends failed with its words; the others succeed; the job says how many failed', async () => {
    const server = await startTapeServer(tb, { dialect: 'eos' });
    const urls = files(server, 'mixed', 3, { delayMs: 200 });
    server.addFile('/tape/mixed/bad', { delayMs: 100, fail: 'cartridge CT0042 unreadable' });
    const { agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall([...urls, `${server.url}/tape/mixed/bad`]), token: await stageToken() });
    const job = await waitForJob(agent.client, id, finished, 30_000);
    expect(job.state).toBe('failed');
    expect(job.counts).toMatchObject({ succeeded: 3, failed: 1 });
    const bad = (await allTransfers(agent, id)).find((t) => t.source.endsWith('/bad'));
    expect(bad?.error?.code).toBe('TAPE_STAGE_FAILED');
    expect(bad?.error?.message).toContain('cartridge CT0042 unreadable');
    expect(job.error?.message).toContain('1 of 4 transfers failed');
  });

  it('`job retry` of a failed recall asks the storage afresh, and the file then ends on disk', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    server.addFile('/tape/again/f', { delayMs: 100, fail: 'drive busy' });
    const url = `${server.url}/tape/again/f`;
    const { agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall([url]), token: await stageToken() });
    expect((await waitForJob(agent.client, id, finished, 30_000)).state).toBe('failed');
    server.addFile('/tape/again/f', { delayMs: 100 });
    await agent.client.retry(id);
    const job = await waitForJob(agent.client, id, finished, 30_000);
    expect(job.state).toBe('succeeded');
    expect(server.stats.stageRequests).toBe(2);
  });

  it('while on tape a job waits with the reason; cancelling it withdraws its files at the storage', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const urls = files(server, 'slow', 5, { delayMs: 600_000 });
    const { home, agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    const waiting = await waitForJob(agent.client, id, (j) => j.state === 'waiting' && Boolean(j.waiting?.reason.startsWith('on tape')), 10_000);
    expect(waiting.waiting?.reason).toMatch(/^on tape: recall \S+ at https:\/\/localhost:\d+ since \d\d:\d\d$/);
    while (server.stats.polls < 1) await sleep(50);
    const status = await petrel(home, ['job', 'status', id]);
    expect(status.stdout).toMatch(/tape: 1 stage request, last polled \d{4}-/);
    expect(status.stdout).toMatch(/#0 waiting\s+\(waiting for tape\) .* https:\/\/localhost:\d+\/tape\/slow\/f0\n/);
    await agent.client.cancel(id);
    const job = await waitForJob(agent.client, id, finished, 10_000);
    expect(job.state).toBe('cancelled');
    expect([...server.stats.cancelledPaths].sort()).toEqual(urls.map((u) => new URL(u).pathname).sort());
  });

  it('after kill -9 mid-poll, the restarted agent polls the same request and stages no file twice', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const urls = files(server, 'crash', 20, { delayMs: 4_000 });
    const home = await makeHome(tb, { tape: TAPE });
    onTestFinished(() => home.cleanup());
    const first = await startAgent(home);
    const { id } = await first.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    await waitForJob(first.client, id, (j) => Boolean(j.waiting?.reason.startsWith('on tape')), 10_000);
    while (server.stats.polls < 1) await sleep(50);
    const requestIds = server.stats.requests.map((r) => r.id);
    await first.kill9();
    const polledBefore = server.stats.polls;
    const second = await startAgent(home);
    onTestFinished(() => second.stop().then(() => undefined));
    const job = await waitForJob(second.client, id, finished, 30_000);
    expect(job.state).toBe('succeeded');
    expect(server.stats.requests.map((r) => r.id)).toEqual(requestIds);
    expect(server.stats.polls).toBeGreaterThan(polledBefore);
    expect(urls.every((u) => server.timesStaged(new URL(u).pathname) === 1)).toBe(true);
  });

  it('a storage that answers 503 for a minute mid-poll loses nothing: the files end on disk, staged once', async () => {
    const server = await startTapeServer(tb, { dialect: 'storm' });
    const urls = files(server, 'flaky', 10, { delayMs: 1_500 });
    const { agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    while (server.stats.polls < 1) await sleep(50);
    server.unavailable(60_000);
    const polled = server.stats.polls;
    await sleep(30_000);
    expect((await agent.client.job(id)).state, 'still waiting while the storage is away').toBe('waiting');
    expect(server.stats.polls, 'polled on meanwhile').toBeGreaterThan(polled + 5);
    const job = await waitForJob(agent.client, id, finished, 45_000);
    expect(job.state).toBe('succeeded');
    expect(server.stats.stageRequests).toBe(1);
  }, 100_000);

  it('a batch larger than the storage takes (dCache: 500) is split on its 413, every file staged once', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const urls = files(server, 'big', 600);
    const { agent } = await agentWith({ tape: { batchSize: 1000 } });
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    expect((await waitForJob(agent.client, id, finished, 30_000)).state).toBe('succeeded');
    expect(server.stats.refused).toBeGreaterThanOrEqual(1);
    expect(server.stats.requests.every((r) => r.files.length <= 500)).toBe(true);
    expect(urls.every((u) => server.timesStaged(new URL(u).pathname) === 1)).toBe(true);
  });

  it('a request the storage forgot (404) is asked for again once, and its files end on disk', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const urls = files(server, 'forgot', 4, { delayMs: 1_000 });
    const { agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    // The request is counted when it arrives, recorded once its body is read: wait for the record.
    while (server.stats.requests.length < 1) await sleep(20);
    server.forget(server.stats.requests[0]!.id);
    const job = await waitForJob(agent.client, id, finished, 30_000);
    expect(job.state).toBe('succeeded');
    expect(server.stats.stageRequests).toBe(2);
  });

  it('a storage without a tape API fails the files with that reason', async () => {
    const server = await startTapeServer(tb, { discovery: false });
    const urls = files(server, 'none', 2);
    const { agent } = await agentWith();
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    const job = await waitForJob(agent.client, id, finished, 30_000);
    expect(job.state).toBe('failed');
    expect(job.error?.message).toContain('offers no tape API');
  });
});

describe('get --stage', () => {
  it('each file downloads as soon as it is on disk (a pipeline, not a barrier), is verified, and is released after', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const urls = Array.from({ length: 6 }, (_, i) => {
      const path = `/tape/pipe/f${i}`;
      server.addFile(path, { content: 64 * 1024, delayMs: 200 + i * 600 });
      return `${server.url}${path}`;
    });
    const { home, agent } = await agentWith();
    const token = await mintToken(tb, { scope: 'storage.stage:/tape storage.read:/tape', expiresIn: 3600 });
    const dest = join(home.dir, 'data');
    const { id } = await agent.client.submit({ kind: 'get', stage: true, transfers: urls.map((u, i) => ({ source: u, destination: join(dest, `f${i}`) })), token });
    const job = await waitForJob(agent.client, id, finished, 30_000);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const transfers = await allTransfers(agent, id);
    // The first file was downloaded while the last was still on tape (it comes 3 s after the first).
    expect(Date.parse(transfers[0]!.finishedAt!)).toBeLessThan(Date.parse(transfers[5]!.finishedAt!) - 1_500);
    for (const t of transfers) {
      expect(t.tape).toBe('on-disk');
      expect(t.checksum?.verified).toBe(true);
      expect((await stat(t.destination)).size).toBe(64 * 1024);
    }
    expect(server.stats.stageRequests).toBe(1);
    await sleep(1_000);
    expect([...server.stats.releasedPaths].sort()).toEqual(urls.map((u) => new URL(u).pathname).sort());
  });
});

describe('copy --stage', () => {
  it('each source is recalled, then copied by the destination XRootD (pull) with the source token, then released', async () => {
    const server = await startTapeServer(tb, { dialect: 'storm' });
    const urls = Array.from({ length: 3 }, (_, i) => {
      server.addFile(`/tape/cp/f${i}`, { content: 32 * 1024, delayMs: 200 + i * 300 });
      return `${server.url}/tape/cp/f${i}`;
    });
    const b = tb.servers.b;
    const { agent } = await agentWith();
    const sourceToken = await mintToken(tb, { scope: 'storage.stage:/tape storage.read:/tape', expiresIn: 3600 });
    const token = await mintToken(tb, { scope: 'storage.read:/tapecopy storage.create:/tapecopy storage.modify:/tapecopy', expiresIn: 3600 });
    const { id } = await agent.client.submit({ kind: 'copy', stage: true, sourceToken, token, transfers: urls.map((u, i) => ({ source: u, destination: `${b.url}/tapecopy/f${i}` })) });
    const job = await waitForJob(agent.client, id, finished, 60_000);
    expect(job.state, JSON.stringify((await allTransfers(agent, id)).map((t) => t.error))).toBe('succeeded');
    for (let i = 0; i < 3; i++) expect((await stat(join(b.dataDir, `tapecopy/f${i}`))).size).toBe(32 * 1024);
    // The stage request went with the source's token, never the destination's.
    expect(server.stats.requests.map((r) => r.token.scope)).toEqual(['storage.stage:/tape storage.read:/tape']);
    await sleep(1_000);
    expect(server.stats.releasedPaths.length).toBe(3);
  });

  it('a --src-token that may read but not recall is refused before anything is queued, naming storage.stage', async () => {
    const server = await startTapeServer(tb, { dialect: 'storm' });
    server.addFile('/tape/cp2/f', {});
    const home = await makeHome(tb);
    onTestFinished(() => home.cleanup());
    await writeFile(join(home.dir, 'src'), await mintToken(tb, { scope: 'storage.read:/tape', expiresIn: 3600 }), { mode: 0o600 });
    await writeFile(join(home.dir, 'dst'), await mintToken(tb, { scope: 'storage.create:/tapecopy', expiresIn: 3600 }), { mode: 0o600 });
    const res = await petrel(home, ['copy', '--stage', '--src-token', join(home.dir, 'src'), '--dst-token', join(home.dir, 'dst'), `${server.url}/tape/cp2/f`, `${tb.servers.b.url}/tapecopy/f`]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('storage.stage:/tape/cp2/f');
    expect(server.stats.stageRequests).toBe(0);
  });
});

describe('limits at the tape endpoint', () => {
  it('with one request allowed at a time, the agent never has two outstanding: the storage refuses nothing', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache', maxUnfinishedRequests: 1 });
    const urls = files(server, 'one', 15, { delayMs: 300 });
    const { agent } = await agentWith({ tape: { batchSize: 5, maxRequestsPerEndpoint: 1 } });
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    expect((await waitForJob(agent.client, id, finished, 30_000)).state).toBe('succeeded');
    expect(server.stats.refused).toBe(0);
    expect(server.stats.stageRequests).toBeGreaterThanOrEqual(3);
    expect(urls.every((u) => server.timesStaged(new URL(u).pathname) === 1)).toBe(true);
  });

  it('a storage that answers 429 (too many requests) is tried again later; every file ends on disk, staged once', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache', maxUnfinishedRequests: 1 });
    const urls = files(server, 'busy', 15, { delayMs: 300 });
    const { agent } = await agentWith({ tape: { batchSize: 5 }, retry: { attempts: 5, baseDelayMs: 200, maxDelayMs: 1000 } });
    const { id } = await agent.client.submit({ kind: 'prestage', transfers: recall(urls), token: await stageToken() });
    expect((await waitForJob(agent.client, id, finished, 30_000)).state).toBe('succeeded');
    expect(server.stats.refused).toBeGreaterThanOrEqual(1);
    expect(urls.every((u) => server.timesStaged(new URL(u).pathname) === 1)).toBe(true);
  });
});

describe('the prestage and locality commands', () => {
  it('`petrel prestage URL... --token F` follows the job to its end (exit 0); `--async --json` prints its id', async () => {
    const server = await startTapeServer(tb, { dialect: 'eos' });
    const urls = files(server, 'cli', 3, { delayMs: 300 });
    const { home } = await agentWith();
    const tokenFile = join(home.dir, 'token');
    await writeFile(tokenFile, await stageToken(), { mode: 0o600 });
    const run = await petrel(home, ['prestage', ...urls, '--token', tokenFile, '--quiet']);
    expect(run.code, run.stderr).toBe(0);
    const queued = await petrel(home, ['prestage', '--async', '--json', '--disk-lifetime', '6h', urls[0] as string, '--token', tokenFile]);
    expect(queued.code, queued.stderr).toBe(0);
    expect(JSON.parse(queued.stdout)).toEqual({ id: expect.any(String) });
    await sleep(TAPE.fillWaitMs + 500);
    expect(server.stats.requests.at(-1)?.diskLifetime).toBe('PT6H');
    const badLifetime = await petrel(home, ['prestage', '--disk-lifetime', 'P1W', urls[0] as string, '--token', tokenFile]);
    expect(badLifetime.code).toBe(2);
    expect(badLifetime.stderr).toContain('dCache');
    // A token that may read but not stage is refused before anything is queued, naming the scope.
    await writeFile(tokenFile, await stageToken('petrel-test', 'storage.read:/tape'), { mode: 0o600 });
    const readOnly = await petrel(home, ['prestage', urls[0] as string, '--token', tokenFile]);
    expect(readOnly.code).toBe(2);
    expect(readOnly.stderr).toContain('storage.stage:/tape/cli/f0');
  });

  it('`petrel locality URL...` prints each file with its locality or error; --json an array; exit 1 when one has no locality', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    server.addFile('/tape/loc/t', {});
    server.addFile('/tape/loc/d', { onDisk: true });
    const { home } = await agentWith();
    const tokenFile = join(home.dir, 'token');
    await writeFile(tokenFile, await stageToken(), { mode: 0o600 });
    const ok = await petrel(home, ['locality', `${server.url}/tape/loc/t`, `${server.url}/tape/loc/d`, '--token', tokenFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('/tape/loc/t\tTAPE\n/tape/loc/d\tDISK_AND_TAPE\n');
    const json = await petrel(home, ['locality', '--json', `${server.url}/tape/loc/t`, `${server.url}/tape/loc/gone`, '--token', tokenFile]);
    expect(json.code).toBe(1);
    const rows = JSON.parse(json.stdout) as { path: string; locality?: string; error?: string }[];
    expect(rows[0]).toMatchObject({ path: '/tape/loc/t', locality: 'TAPE' });
    expect(rows[1]?.error).toBeTruthy();
    expect(server.stats.archiveinfo).toBe(2);
  });
});
