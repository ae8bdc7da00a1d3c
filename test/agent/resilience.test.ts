// What a user must not lose: a killed agent, a storage that goes away, a cancel mid-transfer.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { finished, makeHome, startAgent, waitForJob } from '../helpers/agent.js';
import { partFiles, sha256File } from '../helpers/files.js';
import { mintToken, restartServer, startXrootd, stopServer, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');

/**
 * Tests that cut downloads short get a server of their own: XRootD 5.5.3 can crash (SIGSEGV in
 * libXrdUtils) when a connection dies mid-response while other connections are being accepted,
 * which would take the shared servers down under the other test files.
 */
async function ownServer() {
  const server = await startXrootd(tb, `o${randomUUID().slice(0, 4)}`);
  onTestFinished(() => stopServer(server));
  return server;
}
const GiB = 1 << 30;
const MiB = 1 << 20;
const FAST = { progressFlushMs: 100, retry: { attempts: 10, baseDelayMs: 300, maxDelayMs: 2000 } };

const readToken = () => mintToken(tb, { scope: 'storage.read:/ storage.create:/ storage.modify:/', expiresIn: 3600 });

async function home() {
  const h = await makeHome(tb, FAST);
  onTestFinished(() => h.cleanup());
  return h;
}

describe('resilience', () => {
  it('finishes a 1 GiB download after the agent is killed with SIGKILL mid-transfer, resuming its partial file', async () => {
    const a = await ownServer();
    const path = `/kill9-${randomUUID().slice(0, 8)}.bin`;
    const source = await writeDataFile(a, path, GiB);
    const h = await home();
    const dest = join(h.dir, 'out', 'big.bin');
    let agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    const { id } = await agent.client.submit({ kind: 'get', token: await readToken(), transfers: [{ source: `${a.url}${path}`, destination: dest }] });
    const mid = await waitForJob(agent.client, id, (j) => j.bytesDone > 64 * MiB || finished(j));
    expect(mid.finishedAt, 'the download must still be running when the agent is killed').toBeUndefined();
    await agent.kill9();

    const part = (await stat(`${dest}.petrel-part`)).size;
    expect(part, 'the partial file survives the kill').toBeGreaterThan(0);
    expect(existsSync(dest), 'nothing appears at the destination before the end').toBe(false);

    agent = await startAgent(h);
    const done = await waitForJob(agent.client, id, finished, 180_000);
    expect(done.state).toBe('succeeded');
    expect(await sha256File(dest)).toBe(await sha256File(source));
    expect(await partFiles(join(h.dir, 'out'))).toEqual([]);
    const t = (await agent.client.job(id)).transfers[0];
    expect(t?.checksum?.algorithm).toBe('adler32');
  }, 240_000);

  it('finishes a job of 400 small files after the agent is killed with SIGKILL midway: every file whole, each counted once', async () => {
    const a = await ownServer();
    const dir = `/kill9-small-${randomUUID().slice(0, 8)}`;
    const names = Array.from({ length: 400 }, (_, i) => `f${String(i).padStart(3, '0')}.bin`);
    const sources = new Map<string, Buffer>();
    for (const name of names) {
      const data = randomBytes(16 << 10);
      sources.set(name, data);
      await writeDataFile(a, `${dir}/${name}`, data);
    }
    const h = await home();
    const out = join(h.dir, 'out');
    let agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    const transfers = names.map((name) => ({ source: `${a.url}${dir}/${name}`, destination: join(out, name) }));
    const { id } = await agent.client.submit({ kind: 'get', token: await readToken(), transfers });
    const mid = await waitForJob(agent.client, id, (j) => j.counts.succeeded >= 40 || finished(j), 60_000);
    expect(mid.finishedAt, 'the job must still be running when the agent is killed').toBeUndefined();
    await agent.kill9();

    agent = await startAgent(h);
    const done = await waitForJob(agent.client, id, finished, 120_000);
    expect(done.state).toBe('succeeded');
    expect(done.counts.succeeded).toBe(names.length);
    expect(done.bytesDone).toBe(names.length * (16 << 10));
    for (const [name, data] of sources) expect((await readFile(join(out, name))).equals(data), name).toBe(true);
    expect(await partFiles(out)).toEqual([]);
  }, 240_000);

  it('resumes from a partial file with a Range request, and a corrupt partial file is caught by the checksum and replaced', async () => {
    const { a } = tb.servers;
    const path = `/resume-${randomUUID().slice(0, 8)}.bin`;
    const source = await writeDataFile(a, path, 32 * MiB);
    const h = await home();
    const agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    const token = await readToken();

    // A correct first half: one attempt suffices and the file is right.
    const good = join(h.dir, 'good.bin');
    await copyFile(source, `${good}.petrel-part`);
    await truncate(`${good}.petrel-part`, 16 * MiB);
    const j1 = await agent.client.submit({ kind: 'get', token, transfers: [{ source: `${a.url}${path}`, destination: good }] });
    expect((await waitForJob(agent.client, j1.id, finished)).state).toBe('succeeded');
    expect((await agent.client.job(j1.id)).transfers[0]?.attempts).toBe(1);
    expect(await sha256File(good)).toBe(await sha256File(source));

    // A partial file of other bytes: resuming it gives a checksum mismatch, the retry starts over.
    const bad = join(h.dir, 'bad.bin');
    const fh = await open(`${bad}.petrel-part`, 'w');
    await fh.write(Buffer.alloc(8 * MiB, 7));
    await fh.close();
    const j2 = await agent.client.submit({ kind: 'get', token, transfers: [{ source: `${a.url}${path}`, destination: bad }] });
    expect((await waitForJob(agent.client, j2.id, finished)).state).toBe('succeeded');
    const t = (await agent.client.job(j2.id)).transfers[0];
    expect(t?.attempts, 'the mismatch cost one retry').toBe(2);
    expect(agent.log(), 'the first attempt failed on the checksum').toMatch(/"transfer will retry".*"code":"TRANSFER_CHECKSUM_MISMATCH"/);
    expect(await sha256File(bad)).toBe(await sha256File(source));
  }, 120_000);

  it('retries when the storage server is killed during a transfer and started again, and the retry succeeds', async () => {
    const server = await ownServer();
    const path = `/flaky-${randomUUID().slice(0, 8)}.bin`;
    const source = await writeDataFile(server, path, 512 * MiB);
    const h = await home();
    const agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    const dest = join(h.dir, 'flaky.bin');
    const { id } = await agent.client.submit({ kind: 'get', token: await readToken(), transfers: [{ source: `${server.url}${path}`, destination: dest }] });
    const mid = await waitForJob(agent.client, id, (j) => j.bytesDone > 16 * MiB || finished(j));
    expect(mid.finishedAt).toBeUndefined();
    await stopServer(server, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    await restartServer(server);

    const done = await waitForJob(agent.client, id, finished, 120_000);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const t = (await agent.client.job(id)).transfers[0];
    expect(t?.attempts, 'at least one retry happened').toBeGreaterThanOrEqual(2);
    expect(await sha256File(dest)).toBe(await sha256File(source));
  }, 180_000);

  it('cancels a running job within a second and leaves no partial file', async () => {
    const a = await ownServer();
    const path = `/cancel-${randomUUID().slice(0, 8)}.bin`;
    await writeDataFile(a, path, GiB);
    const h = await home();
    const agent = await startAgent(h);
    onTestFinished(async () => {
      await agent.stop();
    });
    const out = join(h.dir, 'cancel');
    await mkdir(out);
    const { id } = await agent.client.submit({ kind: 'get', token: await readToken(), transfers: [{ source: `${a.url}${path}`, destination: join(out, 'c.bin') }] });
    const mid = await waitForJob(agent.client, id, (j) => j.bytesDone > 8 * MiB || finished(j));
    expect(mid.finishedAt).toBeUndefined();

    const t0 = performance.now();
    const cancelled = await agent.client.cancel(id);
    const elapsed = performance.now() - t0;
    expect(elapsed, 'cancel returns within a second').toBeLessThan(1000);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.counts.cancelled).toBe(1);
    expect(await partFiles(out)).toEqual([]);
    expect(existsSync(join(out, 'c.bin'))).toBe(false);
  }, 120_000);
});
