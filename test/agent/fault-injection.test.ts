// Storages that hang, against a real agent: a TCP server that accepts and never answers, one that
// answers its first requests and then hangs, one that resets connections mid-body, and a real
// XRootD stopped with SIGSTOP for 60 s. In each, the job ends as it should, the agent's health
// answers in under 100 ms throughout, nothing is lost, and transfers to a healthy XRootD in the
// same job finish meanwhile. The stand-ins are small servers in this file; the rest is real.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { createAgentClient, type AgentClient } from '../../src/api/client.js';
import type { JobDetail, SubmitJobRequest } from '../../src/api/schemas.js';
import { finished, makeHome, startAgent, waitForJob, type Home } from '../helpers/agent.js';
import { standIn } from '../helpers/stand-in.js';
import { mintToken, startXrootd, stopServer, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a } = tb.servers;

/** Short timeouts and probes, so that each case runs in seconds; the defaults are in the README. */
const FAST = {
  connectTimeoutMs: 2_000,
  idleTimeoutMs: 3_000,
  retry: { attempts: 5, baseDelayMs: 200, maxDelayMs: 1_000 },
  hostProbeFirstMs: 500,
  hostProbeMaxMs: 2_000,
};

async function agentWith(config: Record<string, unknown>): Promise<{ home: Home; client: AgentClient }> {
  const home = await makeHome(tb, config);
  onTestFinished(() => home.cleanup());
  const agent = await startAgent(home);
  onTestFinished(async () => {
    await agent.stop();
  });
  return { home, client: agent.client };
}

/** Asks the agent's health every 100 ms on its own connection; `max()` is the slowest answer. */
function healthProbe(home: Home): { max(): number; count(): number } {
  const client = createAgentClient({ socket: home.socket, timeoutMs: 5_000 });
  let max = 0;
  let count = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      await client.health();
      max = Math.max(max, performance.now() - t0);
      count++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  onTestFinished(async () => {
    stopped = true;
    await loop;
    await client.close();
  });
  return { max: () => max, count: () => count };
}

/** A TCP server that takes connections and never says a word (a hung door, a dead balancer member). */
async function silentServer(): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined).resume();
  });
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return `https://localhost:${(server.address() as AddressInfo).port}`;
}

/** Files of 1 KB on XRootD a, and their contents. */
async function healthyFiles(n: number, tag: string): Promise<{ url: string; data: Buffer }[]> {
  const files = [];
  for (let i = 0; i < n; i++) {
    const data = randomBytes(1024);
    const path = `/faults-${tag}/f${i}`;
    await writeDataFile(a, path, data);
    files.push({ url: `${a.url}${path}`, data });
  }
  return files;
}

async function allTransfers(client: AgentClient, id: string): Promise<JobDetail['transfers']> {
  return (await client.job(id, { transferLimit: 1000 })).transfers;
}

const since = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

describe('hosts that stop answering', () => {
  it('50 files on a host that never answers and 50 on a healthy one: the healthy 50 finish at once, the others wait, then fail with the reason', async () => {
    const dead = await silentServer();
    const { home, client } = await agentWith({ ...FAST, hostDownFailAfterMs: 12_000 });
    const health = healthProbe(home);
    const tag = randomUUID().slice(0, 8);
    const good = await healthyFiles(50, tag);
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const transfers: SubmitJobRequest['transfers'] = [
      // The dead host's transfers first: oldest-first alone would give it every slot.
      ...Array.from({ length: 50 }, (_, i) => ({ source: `${dead}/f${i}`, destination: join(home.dir, 'dead', `f${i}`) })),
      ...good.map((f, i) => ({ source: f.url, destination: join(home.dir, 'good', `f${i}`) })),
    ];
    const t0 = performance.now();
    const { id } = await client.submit({ kind: 'get', token, checksum: 'none', transfers });

    await waitForJob(client, id, (j) => j.counts.succeeded === 50, 30_000);
    const goodDone = since(t0);
    for (const [i, f] of good.entries()) expect((await readFile(join(home.dir, 'good', `f${i}`))).equals(f.data)).toBe(true);

    const parked = await waitForJob(client, id, (j) => j.counts.waiting >= 45, 30_000);
    const waitingAfter = since(t0);
    expect(parked.waiting?.reason).toMatch(/^storage https:\/\/localhost:\d+ not answering since \d\d:\d\d$/);

    const job = await waitForJob(client, id, finished, 60_000);
    expect(job.state).toBe('failed');
    expect(job.counts).toMatchObject({ succeeded: 50, failed: 50 });
    const failedOnes = (await allTransfers(client, id)).filter((t) => t.state === 'failed');
    for (const t of failedOnes) {
      expect(t.error?.message).toMatch(/^storage https:\/\/localhost:\d+ has not answered since \d\d:\d\d \(\d+ min\): gave up$/);
      expect(t.error?.hint).toContain('petrel job retry');
    }
    // Only the attempts made before the host was known to be down count.
    const attempts = failedOnes.reduce((n, t) => n + t.attempts, 0);
    expect(attempts).toBeLessThanOrEqual(4);
    expect(health.count()).toBeGreaterThan(50);
    expect(health.max()).toBeLessThan(100);
    console.log(`silent host: healthy 50 done after ${goodDone} s, silent 50 waiting after ${waitingAfter} s, attempts counted ${attempts}, slowest health ${health.max().toFixed(1)} ms`);
  }, 90_000);

  it('a host that answers its first 5 requests and then hangs: those 5 arrive whole, the rest wait and fail; the healthy host finishes', async () => {
    let served = 0;
    const bodies = new Map<string, Buffer>();
    const flaky = await standIn(tb, (req, res) => {
      if (served >= 5) return; // from now on: takes the request, never answers
      served++;
      const body = randomBytes(4096);
      bodies.set(req.url ?? '', body);
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    const { home, client } = await agentWith({ ...FAST, hostDownFailAfterMs: 10_000 });
    const health = healthProbe(home);
    const good = await healthyFiles(10, randomUUID().slice(0, 8));
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const { id } = await client.submit({
      kind: 'get',
      token,
      checksum: 'none',
      transfers: [
        ...Array.from({ length: 15 }, (_, i) => ({ source: `${flaky.url}/f${i}`, destination: join(home.dir, 'flaky', `f${i}`) })),
        ...good.map((f, i) => ({ source: f.url, destination: join(home.dir, 'good', `f${i}`) })),
      ],
    });
    const job = await waitForJob(client, id, finished, 60_000);
    expect(job.counts).toMatchObject({ succeeded: 15, failed: 10 });
    const transfers = await allTransfers(client, id);
    for (const t of transfers.filter((x) => x.state === 'succeeded' && x.source.startsWith(flaky.url))) {
      expect((await readFile(t.destination)).equals(bodies.get(new URL(t.source).pathname) as Buffer)).toBe(true);
    }
    for (const t of transfers.filter((x) => x.state === 'failed')) expect(t.error?.message).toContain('has not answered since');
    expect(health.max()).toBeLessThan(100);
  }, 90_000);

  it('a host that resets connections mid-body: each file is retried and arrives whole, and the host is never taken for down', async () => {
    const tries = new Map<string, number>();
    const bodies = new Map<string, Buffer>();
    const resetting = await standIn(tb, (req, res) => {
      const path = req.url ?? '';
      const body = bodies.get(path) ?? randomBytes(256 << 10);
      bodies.set(path, body);
      const n = (tries.get(path) ?? 0) + 1;
      tries.set(path, n);
      res.writeHead(200, { 'Content-Length': body.length });
      if (n === 1) res.write(body.subarray(0, 100 << 10), () => res.socket?.destroy());
      else res.end(body);
    });
    const { home, client } = await agentWith(FAST);
    const health = healthProbe(home);
    const { id } = await client.submit({
      kind: 'get',
      checksum: 'none',
      transfers: Array.from({ length: 8 }, (_, i) => ({ source: `${resetting.url}/f${i}`, destination: join(home.dir, `f${i}`) })),
    });
    let sawWaiting = false;
    const job = await waitForJob(
      client,
      id,
      (j) => {
        sawWaiting ||= j.counts.waiting > 0;
        return finished(j);
      },
      60_000,
    );
    expect(job.state).toBe('succeeded');
    expect(sawWaiting).toBe(false);
    for (const t of await allTransfers(client, id)) {
      expect(t.attempts).toBe(2);
      expect((await readFile(t.destination)).equals(bodies.get(new URL(t.source).pathname) as Buffer)).toBe(true);
    }
    expect(health.max()).toBeLessThan(100);
  }, 60_000);

  it('a real XRootD stopped with SIGSTOP for 60 s: its transfers wait without spending attempts, the healthy XRootD finishes meanwhile, and all arrive after SIGCONT', async () => {
    const frozen = await startXrootd(tb, `frozen-${randomUUID().slice(0, 6)}`);
    onTestFinished(async () => {
      const pid = Number(await readFile(frozen.pidFile, 'utf8').catch(() => '0'));
      if (pid) process.kill(pid, 'SIGCONT');
      await stopServer(frozen);
    });
    const tag = randomUUID().slice(0, 8);
    const frozenFiles: { url: string; data: Buffer }[] = [];
    for (let i = 0; i < 20; i++) {
      const data = randomBytes(64 << 10);
      await writeDataFile(frozen, `/frozen-${tag}/f${i}`, data);
      frozenFiles.push({ url: `${frozen.url}/frozen-${tag}/f${i}`, data });
    }
    const good = await healthyFiles(20, tag);
    const { home, client } = await agentWith({ ...FAST, hostProbeMaxMs: 4_000 });
    const health = healthProbe(home);
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const pid = Number(await readFile(frozen.pidFile, 'utf8'));
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    const { id } = await client.submit({
      kind: 'get',
      token,
      checksum: 'adler32',
      transfers: [
        ...frozenFiles.map((f, i) => ({ source: f.url, destination: join(home.dir, 'frozen', `f${i}`) })),
        ...good.map((f, i) => ({ source: f.url, destination: join(home.dir, 'good', `f${i}`) })),
      ],
    });
    await waitForJob(client, id, (j) => j.counts.succeeded >= 20, 30_000);
    const parked = await waitForJob(client, id, (j) => j.counts.waiting >= 18, 30_000);
    const toWaiting = since(stoppedAt);
    expect(parked.waiting?.reason).toContain(`storage ${frozen.url} not answering since`);

    await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (performance.now() - stoppedAt))));
    process.kill(pid, 'SIGCONT');
    const continuedAt = performance.now();
    const job = await waitForJob(client, id, finished, 60_000);
    const toDone = since(continuedAt);
    expect(job.state).toBe('succeeded');
    const transfers = await allTransfers(client, id);
    const attempts = transfers.filter((t) => t.source.startsWith(frozen.url)).reduce((n, t) => n + t.attempts, 0);
    // One counted attempt each that succeeded, plus the few before the host was known to be down.
    expect(attempts).toBeLessThanOrEqual(20 + 4);
    for (const [i, f] of frozenFiles.entries()) expect((await readFile(join(home.dir, 'frozen', `f${i}`))).equals(f.data)).toBe(true);
    expect(health.max()).toBeLessThan(100);
    console.log(`SIGSTOP 60 s: waiting ${toWaiting} s after the stop, all done ${toDone} s after SIGCONT, attempts counted ${attempts} for 20 files, slowest health ${health.max().toFixed(1)} ms`);
  }, 150_000);
});
