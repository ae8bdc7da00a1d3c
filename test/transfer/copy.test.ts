// Third-party copies between the test bed's two XRootD servers, with real tokens: the data goes
// from server to server; petrel only sends the COPY and reads its markers.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAgentClient, type AgentClient } from '../../src/api/client.js';
import type { JobEvent } from '../../src/api/schemas.js';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { sha256File } from '../helpers/files.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a, b } = tb.servers;
const MiB = 1024 * 1024;

let home: Home;
let agent: RunningAgent;
let client: AgentClient;
let readA: string;
let writeB: string;
let readB: string;
let writeA: string;

beforeAll(async () => {
  home = await makeHome(tb, { retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 } });
  agent = await startAgent(home);
  client = createAgentClient({ socket: home.socket, timeoutMs: 30_000 });
  // A different token for each side, each with only what its side needs.
  readA = await mintToken(tb, { scope: 'storage.read:/cp', aud: a.url });
  // XRootD 5.5 lets a token delete (a failed copy's leftover) only with storage.read there too.
  writeB = await mintToken(tb, { scope: 'storage.read:/cp storage.create:/cp storage.modify:/cp', aud: b.url });
  readB = await mintToken(tb, { scope: 'storage.read:/cp', aud: b.url });
  writeA = await mintToken(tb, { scope: 'storage.create:/cp storage.modify:/cp', aud: a.url });
  await writeDataFile(a, '/cp/big.bin', 256 * MiB);
  await writeDataFile(b, '/cp/big-b.bin', 256 * MiB);
});
afterAll(async () => {
  await client.close();
  await agent.stop();
  await home.cleanup();
});

async function runCopy(req: Parameters<AgentClient['submit']>[0]) {
  const { id } = await client.submit(req);
  const events: JobEvent[] = [];
  for await (const ev of client.events(id)) events.push(ev);
  return { job: await waitForJob(client, id, finished, 120_000), events, id };
}

describe('third-party copy', () => {
  it('pulls 256 MiB from a to b with a token per side; the checksums of both ends agree', async () => {
    const { job, events, id } = await runCopy({ kind: 'copy', copyMode: 'pull', sourceToken: readA, token: writeB, transfers: [{ source: `${a.url}/cp/big.bin`, destination: `${b.url}/cp/pulled.bin` }] });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(events.some((e) => e.type === 'transfer' && e.transfer.state === 'succeeded')).toBe(true);
    expect(await sha256File(join(b.dataDir, 'cp/pulled.bin'))).toBe(await sha256File(join(a.dataDir, 'cp/big.bin')));
    const detail = await client.job(id);
    expect(detail.transfers[0]?.checksum).toMatchObject({ algorithm: 'adler32', verified: true });
    expect(detail.bytesDone).toBe(256 * MiB);
  });

  it('pushes 256 MiB from b to a (COPY to the source with Destination:)', async () => {
    const { job } = await runCopy({ kind: 'copy', copyMode: 'push', sourceToken: readB, token: writeA, transfers: [{ source: `${b.url}/cp/big-b.bin`, destination: `${a.url}/cp/pushed.bin` }] });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(await sha256File(join(a.dataDir, 'cp/pushed.bin'))).toBe(await sha256File(join(b.dataDir, 'cp/big-b.bin')));
  });

  it('a destination token without write scope fails at once with the server reason, and leaves nothing', async () => {
    const { job, id } = await runCopy({ kind: 'copy', sourceToken: readA, token: readB, transfers: [{ source: `${a.url}/cp/big.bin`, destination: `${b.url}/cp/denied.bin` }] });
    expect(job.state).toBe('failed');
    const t = (await client.job(id)).transfers[0];
    expect(t?.attempts).toBe(1);
    expect(t?.error?.code).toBe('TRANSFER_DENIED');
    expect(t?.error?.message).toMatch(/401 .*permission denied/);
    expect(existsSync(join(b.dataDir, 'cp/denied.bin'))).toBe(false);
  });

  it('a missing source fails at once with the server text, and removes the empty file the copy left', async () => {
    const { job, id } = await runCopy({ kind: 'copy', sourceToken: readA, token: writeB, transfers: [{ source: `${a.url}/cp/nope.bin`, destination: `${b.url}/cp/nope.bin` }] });
    expect(job.state).toBe('failed');
    const t = (await client.job(id)).transfers[0];
    expect(t?.attempts).toBe(1);
    expect(t?.error?.code).toBe('TRANSFER_SOURCE_MISSING');
    expect(t?.error?.message).toContain('status code 404');
    expect(existsSync(join(b.dataDir, 'cp/nope.bin'))).toBe(false);
  });

  it('refuses to replace an existing destination without --overwrite, and does not touch it', async () => {
    await writeDataFile(b, '/cp/exists.bin', Buffer.from('keep me'));
    const { job, id } = await runCopy({ kind: 'copy', sourceToken: readA, token: writeB, transfers: [{ source: `${a.url}/cp/big.bin`, destination: `${b.url}/cp/exists.bin` }] });
    expect(job.state).toBe('failed');
    expect((await client.job(id)).transfers[0]?.error?.hint).toContain('--overwrite');
    expect(await readFile(join(b.dataDir, 'cp/exists.bin'), 'utf8')).toBe('keep me');
  });

  it('cancel during a copy leaves no file at the destination', async () => {
    await writeDataFile(a, '/cp/huge.bin', 1024 * MiB);
    const { id } = await client.submit({ kind: 'copy', sourceToken: readA, token: writeB, checksum: 'none', transfers: [{ source: `${a.url}/cp/huge.bin`, destination: `${b.url}/cp/cancelled.bin` }] });
    // Progress comes from the server's perf markers while the copy runs.
    for await (const ev of client.events(id)) if (ev.type === 'progress') break;
    await client.cancel(id);
    const job = await waitForJob(client, id, finished, 30_000);
    expect(job.state).toBe('cancelled');
    // The copying server may still hold the file open for a moment.
    for (let i = 0; i < 50 && existsSync(join(b.dataDir, 'cp/cancelled.bin')); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(b.dataDir, 'cp/cancelled.bin'))).toBe(false);
  });

  it('petrel copy with --src-token and --dst-token, several sources into a directory, one job', async () => {
    await writeDataFile(a, '/cp/s1.txt', Buffer.from('one'));
    await writeDataFile(a, '/cp/s2.txt', Buffer.from('two'));
    await writeFile(join(home.dir, 'src.tok'), readA, { mode: 0o600 });
    await writeFile(join(home.dir, 'dst.tok'), writeB, { mode: 0o600 });
    const res = await petrel(home, ['copy', '--async', '--wait', '-q', '--src-token', join(home.dir, 'src.tok'), '--dst-token', join(home.dir, 'dst.tok'),
      `${a.url}/cp/s1.txt`, `${a.url}/cp/s2.txt`, `${b.url}/cp/dir/`]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/succeeded: 2 transfers/);
    expect(await readFile(join(b.dataDir, 'cp/dir/s2.txt'), 'utf8')).toBe('two');
  });

  it('a foreground copy with one --token carries it to the source too', async () => {
    await writeDataFile(a, '/cp/one-token.txt', Buffer.from('one token'));
    const both = await mintToken(tb, { scope: 'storage.read:/cp storage.create:/cp storage.modify:/cp' });
    await writeFile(join(home.dir, 'both.tok'), both, { mode: 0o600 });
    const res = await petrel(home, ['copy', '-q', '--token', join(home.dir, 'both.tok'), `${a.url}/cp/one-token.txt`, `${b.url}/cp/one-token.txt`]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(b.dataDir, 'cp/one-token.txt'), 'utf8')).toBe('one token');
  });
});

describe('third-party copy when the destination dies', () => {
  it('the destination server killed mid-copy and restarted: the retry succeeds', async () => {
    const { startXrootd, stopServer, restartServer } = await import('../testbed/index.js');
    const dest = await startXrootd(tb, 'cpkill');
    const h = await makeHome(tb, { retry: { attempts: 10, baseDelayMs: 300, maxDelayMs: 1000 } });
    const ag = await startAgent(h);
    const c = createAgentClient({ socket: h.socket, timeoutMs: 30_000 });
    try {
      await writeDataFile(a, '/cp/kill.bin', 1024 * MiB);
      const write = await mintToken(tb, { scope: 'storage.read:/cp storage.create:/cp storage.modify:/cp', aud: dest.url });
      const { id } = await c.submit({ kind: 'copy', sourceToken: readA, token: write, checksum: 'adler32', transfers: [{ source: `${a.url}/cp/kill.bin`, destination: `${dest.url}/cp/kill.bin` }] });
      for await (const ev of c.events(id)) if (ev.type === 'progress') break;
      await stopServer(dest, 'SIGKILL');
      await restartServer(dest);
      const job = await waitForJob(c, id, finished, 180_000);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      const t = (await c.job(id)).transfers[0];
      expect(t?.attempts).toBeGreaterThanOrEqual(2);
      expect(t?.checksum?.verified).toBe(true);
    } finally {
      await c.close();
      await ag.stop();
      await h.cleanup();
      await stopServer(dest);
    }
    // The job may need a restart, retries and two checksums of 1 GiB: up to the wait above.
  }, 200_000);
});

describe('many copies', () => {
  it('one job of 200 small copies completes, never more than the per-host limit at once', async () => {
    const h = await makeHome(tb, { concurrency: 8, perHostConcurrency: 2, retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 } });
    const ag = await startAgent(h);
    const c = createAgentClient({ socket: h.socket, timeoutMs: 30_000 });
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => writeDataFile(a, `/cp/many/f${i}.txt`, Buffer.from(`file ${i}\n`))));
      const { id } = await c.submit({
        kind: 'copy',
        sourceToken: readA,
        token: writeB,
        transfers: Array.from({ length: 200 }, (_, i) => ({ source: `${a.url}/cp/many/f${i}.txt`, destination: `${b.url}/cp/many/f${i}.txt` })),
      });
      let maxRunning = 0;
      let job = await c.job(id, { transferLimit: 1 });
      while (!job.finishedAt) {
        maxRunning = Math.max(maxRunning, job.counts.running);
        await new Promise((r) => setTimeout(r, 10));
        job = await c.job(id, { transferLimit: 1 });
      }
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.counts.succeeded).toBe(200);
      // Every COPY goes to b (pull): b's limit of 2 holds although 8 could run.
      expect(maxRunning).toBeLessThanOrEqual(2);
      expect(await readFile(join(b.dataDir, 'cp/many/f199.txt'), 'utf8')).toBe('file 199\n');
    } finally {
      await c.close();
      await ag.stop();
      await h.cleanup();
    }
  }, 120_000);
});

describe('a storage that refuses COPY', () => {
  it('fails with a hint, and with --fallback streamed streams the data through the agent, checksum verified', async () => {
    const { startXrootd, stopServer } = await import('../testbed/index.js');
    const plain = await startXrootd(tb, 'notpc', { tpc: false });
    try {
      const write = await mintToken(tb, { scope: 'storage.read:/cp storage.create:/cp storage.modify:/cp', aud: plain.url });
      const refused = await runCopy({ kind: 'copy', sourceToken: readA, token: write, transfers: [{ source: `${a.url}/cp/big.bin`, destination: `${plain.url}/cp/refused.bin` }] });
      expect(refused.job.state).toBe('failed');
      const t = (await client.job(refused.id)).transfers[0];
      expect(t?.attempts).toBe(1);
      expect(t?.error?.hint, JSON.stringify(t?.error)).toContain('--fallback streamed');

      const { job, id } = await runCopy({ kind: 'copy', fallback: 'streamed', sourceToken: readA, token: write, transfers: [{ source: `${a.url}/cp/big.bin`, destination: `${plain.url}/cp/streamed.bin` }] });
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect((await client.job(id)).transfers[0]?.checksum).toMatchObject({ algorithm: 'adler32', verified: true });
      expect(await sha256File(join(plain.dataDir, 'cp/streamed.bin'))).toBe(await sha256File(join(a.dataDir, 'cp/big.bin')));
    } finally {
      await stopServer(plain);
    }
  });
});
